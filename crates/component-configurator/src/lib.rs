//! Component Configurator (work in progress).
