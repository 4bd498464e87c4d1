//! Example dynamic component: a statistics service over TCP that counts requests and keeps its count across hot upgrades.
