//! The bench groups.

pub(crate) mod model;
