//! The bench groups.

pub(crate) mod encoder;
pub(crate) mod model;
