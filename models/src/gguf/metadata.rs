//! The metadata key–value store of a GGUF file.

use std::collections::HashMap;

use super::Value;
use crate::{Error, Result};

/// Metadata: keys mapped to [`Value`]s, in file order, keys unique.
///
/// [`get`](Metadata::get) looks a value up as stored; the typed helpers (`get_u32`,
/// `get_str_array`, …) return [`Error::MissingMetadata`] when the key is absent and
/// [`Error::BadMetadata`] when its value has an unusable type or range. Integer helpers
/// accept any integer type whose value fits (a `u32` field stored as `i32` is fine);
/// float helpers accept `f32` and `f64`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// Adds a new key; gives the value back if the key is already present.
    pub(crate) fn insert_new(&mut self, key: String, value: Value) -> Result<(), Value> {
        if self.index.contains_key(&key) {
            return Err(value);
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Sets a key: replaces the value in place if present, appends otherwise.
    pub(crate) fn set(&mut self, key: String, value: Value) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                if let Err(v) = self.insert_new(key, value) {
                    unreachable!("key absent from the index: {v:?}");
                }
            }
        }
    }

    /// Removes a key, keeping the order of the others; returns its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index.remove(key)?;
        let (_, value) = self.entries.remove(i);
        for (k, _) in &self.entries[i..] {
            if let Some(j) = self.index.get_mut(k) {
                *j -= 1;
            }
        }
        Some(value)
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The entries in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries (as stored in the file: the header's `metadata_kv_count`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| Error::MissingMetadata {
            key: key.to_owned(),
        })
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T> {
        let value = self.require(key)?;
        f(value).ok_or_else(|| bad(key, expected, value))
    }

    /// An integer in `0..=u32::MAX`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not such an integer.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.typed(key, "an integer in 0..=4294967295", Value::as_u32)
    }

    /// A non-negative integer.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not such an integer.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }

    /// An `f32` (or an `f64`, rounded).
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not a float.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.typed(key, "a float", Value::as_f32)
    }

    /// A string.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.typed(key, "a string", Value::as_str)
    }

    /// A boolean.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not a boolean.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.typed(key, "a bool", Value::as_bool)
    }

    /// An array's elements.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not an array.
    pub fn get_array(&self, key: &str) -> Result<&[Value]> {
        self.typed(key, "an array", Value::as_array)
    }

    /// An array of strings (a tokenizer's `tokenizer.ggml.tokens`, say).
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not an array of
    /// strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        self.typed(key, "an array of strings", |v| {
            v.as_array()?.iter().map(Value::as_str).collect()
        })
    }

    /// An array of integers in `i32`'s range.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not such an array.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.typed(key, "an array of integers in i32 range", |v| {
            v.as_array()?.iter().map(Value::as_i32).collect()
        })
    }

    /// An array of floats (`f64` elements rounded to `f32`).
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] if absent, [`Error::BadMetadata`] if not such an array.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>> {
        self.typed(key, "an array of floats", |v| {
            v.as_array()?.iter().map(Value::as_f32).collect()
        })
    }
}

fn bad(key: &str, expected: &'static str, found: &Value) -> Error {
    Error::BadMetadata {
        key: key.to_owned(),
        expected: format!("{expected}, found {} {found}", found.type_name()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        let mut m = Metadata::default();
        for (k, v) in [
            ("a.u32", Value::U32(7)),
            ("a.neg", Value::I32(-1)),
            ("a.f64", Value::F64(0.25)),
            ("a.s", Value::String("hi".into())),
            ("a.b", Value::Bool(true)),
            ("a.toks", Value::Array(vec!["x".into(), "y".into()])),
            ("a.ints", Value::Array(vec![Value::I32(-2), Value::U8(3)])),
        ] {
            m.insert_new(k.into(), v).unwrap();
        }
        m
    }

    #[test]
    fn typed_getters_convert_or_explain() {
        let m = sample();
        assert_eq!(m.get_u32("a.u32").unwrap(), 7);
        assert_eq!(m.get_u64("a.u32").unwrap(), 7);
        assert_eq!(m.get_f32("a.f64").unwrap().to_bits(), 0.25f32.to_bits());
        assert_eq!(m.get_str("a.s").unwrap(), "hi");
        assert!(m.get_bool("a.b").unwrap());
        assert_eq!(m.get_str_array("a.toks").unwrap(), ["x", "y"]);
        assert_eq!(m.get_i32_array("a.ints").unwrap(), [-2, 3]);
        assert_eq!(m.get_array("a.ints").unwrap().len(), 2);
        let e = m.get_u32("a.neg").unwrap_err();
        assert!(
            matches!(&e, Error::BadMetadata { key, expected } if key == "a.neg" && expected.contains("found i32 -1")),
            "{e}"
        );
        assert!(matches!(
            m.get_str_array("a.ints"),
            Err(Error::BadMetadata { .. })
        ));
        assert!(matches!(
            m.get_f32_array("a.toks"),
            Err(Error::BadMetadata { .. })
        ));
        assert!(matches!(
            m.get_str("nope"),
            Err(Error::MissingMetadata { key }) if key == "nope"
        ));
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut m = sample();
        assert!(m.insert_new("a.u32".into(), Value::U8(0)).is_err());
        m.set("a.u32".into(), Value::U8(1));
        m.set("z".into(), Value::U8(2));
        assert_eq!(m.iter().next().unwrap(), ("a.u32", &Value::U8(1)));
        assert_eq!(m.remove("a.neg"), Some(Value::I32(-1)));
        assert_eq!(m.remove("a.neg"), None);
        let keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["a.u32", "a.f64", "a.s", "a.b", "a.toks", "a.ints", "z"]
        );
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.index[*k], i);
        }
        assert_eq!(m.len(), 7);
        assert!(!m.is_empty() && m.contains_key("z"));
    }
}
