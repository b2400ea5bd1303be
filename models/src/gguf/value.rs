//! Metadata values: the thirteen GGUF value types.

use core::fmt;

/// A GGUF value type id (the spec's `gguf_metadata_value_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type with id `id`, if the spec defines one.
    pub(crate) fn from_id(id: u32) -> Option<ValueType> {
        Some(match id {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::String,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return None,
        })
    }

    /// The fewest bytes a value of this type takes in a file: its size for the fixed-size
    /// types, the length prefix for a string, the element type and count for an array.
    pub(crate) fn min_size(self) -> u64 {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 | ValueType::String => 8,
            ValueType::Array => 12,
        }
    }

    /// The spec's short name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }
}

/// A metadata value.
///
/// Arrays hold their elements as values; in a file every element of one array has the same
/// type (arrays of arrays may differ in their inner element types). An empty array's
/// element type is not kept: [`GgufWriter`](super::GgufWriter) writes empty arrays as
/// arrays of `u8` (gguf-py refuses to write empty arrays at all).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `u8` (type 0).
    U8(u8),
    /// `i8` (type 1).
    I8(i8),
    /// `u16` (type 2).
    U16(u16),
    /// `i16` (type 3).
    I16(i16),
    /// `u32` (type 4).
    U32(u32),
    /// `i32` (type 5).
    I32(i32),
    /// `f32` (type 6).
    F32(f32),
    /// A boolean, one byte 0 or 1 (type 7).
    Bool(bool),
    /// A UTF-8 string (type 8).
    String(String),
    /// `u64` (type 10).
    U64(u64),
    /// `i64` (type 11).
    I64(i64),
    /// `f64` (type 12).
    F64(f64),
    /// An array (type 9).
    Array(Vec<Value>),
}

impl Value {
    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// The type's short name: `"u8"`, `"i32"`, `"f32"`, `"bool"`, `"string"`, `"array"`, ….
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.value_type().name()
    }

    /// Any non-negative integer, widened to `u64`.
    ///
    /// ```
    /// use models::gguf::Value;
    /// assert_eq!(Value::I16(7).as_u64(), Some(7));
    /// assert_eq!(Value::I16(-7).as_u64(), None);
    /// assert_eq!(Value::F32(7.0).as_u64(), None);
    /// ```
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer in `0..=u32::MAX`.
    #[must_use]
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer in `i64`'s range, widened.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Any integer in `i32`'s range.
    #[must_use]
    pub fn as_i32(&self) -> Option<i32> {
        self.as_i64().and_then(|v| i32::try_from(v).ok())
    }

    /// An `f32`, or an `f64` rounded to `f32`.
    #[must_use]
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// A boolean.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array's elements.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// Longest string shown in full by `Display`, in characters.
const SHOW_CHARS: usize = 64;
/// Longest array shown in full by `Display`; longer ones show their first `SHOW_ITEMS - 1`.
const SHOW_ITEMS: usize = 6;

/// A short human rendering: numbers as usual, strings quoted and escaped (cut after 64
/// characters), long arrays as their first few elements and the count:
///
/// ```
/// use models::gguf::Value;
/// let v = Value::Array((0..1000u32).map(Value::U32).collect());
/// assert_eq!(v.to_string(), "[0, 1, 2, 3, 4, … (1000 items)]");
/// assert_eq!(Value::String("a\"b".into()).to_string(), r#""a\"b""#);
/// ```
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::String(s) => match s.char_indices().nth(SHOW_CHARS) {
                Some((cut, _)) => write!(f, "{:?}…", &s[..cut]),
                None => write!(f, "{s:?}"),
            },
            Value::Array(items) => {
                let shown = if items.len() > SHOW_ITEMS {
                    SHOW_ITEMS - 1
                } else {
                    items.len()
                };
                f.write_str("[")?;
                for (i, item) in items[..shown].iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                if shown < items.len() {
                    write!(f, ", … ({} items)", items.len())?;
                }
                f.write_str("]")
            }
        }
    }
}

macro_rules! from_impls {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$v(v)
            }
        })*
    };
}

from_impls!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, String => String, u64 => U64, i64 => I64, f64 => F64, Vec<Value> => Array);

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_accessors_widen_and_refuse_what_does_not_fit() {
        assert_eq!(Value::U64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::U64(1 << 32).as_u32(), None);
        assert_eq!(Value::I64(-1).as_u32(), None);
        assert_eq!(Value::I8(-3).as_i64(), Some(-3));
        assert_eq!(Value::U32(u32::MAX).as_i32(), None);
        assert_eq!(Value::U16(9).as_i32(), Some(9));
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(
            Value::F64(0.5).as_f32().map(f32::to_bits),
            Some(0.5f32.to_bits())
        );
        assert_eq!(Value::U8(1).as_f32(), None);
        assert_eq!(Value::String("x".into()).as_str(), Some("x"));
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        assert_eq!(Value::Array(vec![]).as_array().map(<[Value]>::len), Some(0));
        assert_eq!(Value::U8(0).as_array(), None);
    }

    #[test]
    fn display_is_short() {
        assert_eq!(Value::Array(vec![]).to_string(), "[]");
        let six = Value::Array((0..6u8).map(Value::U8).collect());
        assert_eq!(six.to_string(), "[0, 1, 2, 3, 4, 5]");
        let nested = Value::Array(vec![Value::Array(vec![1i32.into()]), "é".into()]);
        assert_eq!(nested.to_string(), "[[1], \"é\"]");
        let long = Value::String("é".repeat(100));
        assert_eq!(long.to_string(), format!("{:?}…", "é".repeat(64)));
        assert_eq!(Value::F32(1.5).to_string(), "1.5");
        assert_eq!(Value::Bool(true).type_name(), "bool");
        assert_eq!(Value::Array(vec![]).type_name(), "array");
    }

    #[test]
    fn type_ids_round_trip() {
        for id in 0..13 {
            let t = ValueType::from_id(id).unwrap();
            assert_eq!(t as u32, id);
        }
        assert_eq!(ValueType::from_id(13), None);
    }
}
