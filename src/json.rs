//! Strict reading of the JSON objects the library is handed (options, configuration, callbacks).
//!
//! `serde_json::Value` would silently keep the last of two equal keys; a caller who wrote a key
//! twice made a mistake that must be reported, so objects are read key by key here.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result, Status};
use crate::redact::printable;

/// The members of a JSON object, in the order written, keys unique. Keys borrow from the
/// text when they hold no escape (the usual case: no allocation per key).
#[derive(Debug)]
pub(crate) struct Fields<'a>(pub(crate) Vec<(Cow<'a, str>, Value)>);

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Fields<'de>, D::Error> {
        d.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Fields<'de>, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, Value)> = Vec::with_capacity(4);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!(
                    "key `{}` appears twice",
                    printable(&key, 64)
                )));
            }
            let value = map.next_value::<Value>()?;
            fields.push((key, value));
        }
        Ok(Fields(fields))
    }
}

/// An object's key, borrowed from the text when it can be (serde's own `Cow<str>` always
/// copies).
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Key<'de>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

/// Parses `text` as one JSON object of at most `max_len` bytes. `what` names it in messages.
///
/// Not JSON at all → `InvalidJson`; JSON of another type, or a key written twice →
/// `InvalidArgument`.
pub(crate) fn parse_object<'a>(text: &'a str, what: &str, max_len: usize) -> Result<Fields<'a>> {
    if text.len() > max_len {
        return Err(Error::invalid(format!(
            "{what} are {} bytes, more than the limit of {max_len} bytes",
            text.len()
        )));
    }
    serde_json::from_str::<Fields>(text).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => Status::InvalidArgument,
            _ => Status::InvalidJson,
        };
        if status == Status::InvalidArgument && e.to_string().starts_with("invalid type") {
            // Wrong type at the top: JSON of another type, or not JSON at all? Only the
            // error path pays for the second look.
            return match serde_json::from_str::<de::IgnoredAny>(text) {
                Ok(_) => Error::invalid(format!("{what} must be a JSON object")),
                Err(e) => Error::new(
                    Status::InvalidJson,
                    format!("{what} are not valid JSON: {e}"),
                ),
            };
        }
        Error::new(status, format!("{what} are not valid: {e}"))
    })
}

/// The JSON type of a value, for messages ("a string", "a number", ...).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_by_name() {
        let e = parse_object(r#"{"url":"a","url":"b"}"#, "options", 100)
            .expect_err("duplicate must fail");
        assert_eq!(e.status(), Status::InvalidArgument);
        assert!(
            e.message().contains("`url` appears twice"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn non_objects_are_invalid_arguments_and_garbage_is_invalid_json() {
        let e = parse_object("[1,2]", "options", 100).expect_err("array");
        assert_eq!(e.status(), Status::InvalidArgument);
        assert!(e.message().contains("must be a JSON object"));
        let e = parse_object("{\"url\":", "options", 100).expect_err("eof");
        assert_eq!(e.status(), Status::InvalidJson);
        let e = parse_object("not json", "options", 100).expect_err("garbage");
        assert_eq!(e.status(), Status::InvalidJson);
        let e = parse_object("[1,", "options", 100).expect_err("broken array");
        assert_eq!(e.status(), Status::InvalidJson);
    }
}
