//! Example dynamic component: a line echo service over TCP, loaded by the component configurator.
