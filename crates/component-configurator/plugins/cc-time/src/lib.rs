//! Example dynamic component: a time service over TCP answering each request with the current time.
