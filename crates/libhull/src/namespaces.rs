//! Namespaces: which to create and which to join, and joining by path.
