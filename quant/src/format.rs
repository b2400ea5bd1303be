//! Module under construction.

/// Placeholder.
#[derive(Debug, Clone, Copy)]
pub struct QuantFormat;
/// Placeholder.
#[derive(Debug, Clone)]
pub struct QuantizedTensor;
