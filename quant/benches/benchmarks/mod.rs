//! One module per benchmarked area.

pub(crate) mod formats;
pub(crate) mod qmatvec;
