//! Integration tests for gof-creational, one module per pattern.

mod abstract_factory;
mod factory_method;
mod prototype;
mod singleton;
