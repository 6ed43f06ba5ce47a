//! The client-facing session: routing, id remapping, namespacing, inspection.
