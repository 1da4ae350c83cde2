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
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
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

/// A string (an object's key, or a value) borrowed from the text when it holds no escape:
/// serde's own `Cow<str>` always copies, and its `borrow` does not reach into an `Option`
/// field of a derived struct.
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Text<'a>, D::Error> {
        Ok(Text(d.deserialize_str(TextVisitor)?))
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// Parses `text` as one JSON object of at most `max_len` bytes. `what` names it in messages.
///
/// Not JSON at all → `InvalidJson`; JSON of another type, or a key written twice →
/// `InvalidArgument`.
pub(crate) fn parse_object<'a>(text: &'a str, what: &str, max_len: usize) -> Result<Fields<'a>> {
    check_len(text, what, max_len)?;
    serde_json::from_str::<Fields>(text).map_err(|e| json_error(text, what, e))
}

/// Refuses a text longer than `max_len` bytes, naming it.
pub(crate) fn check_len(text: &str, what: &str, max_len: usize) -> Result<()> {
    if text.len() > max_len {
        return Err(Error::invalid(format!(
            "{what} are {} bytes, more than the limit of {max_len} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// The error of reading `text` as the object `what`: not JSON at all → `InvalidJson`; JSON of
/// another type, or a key written twice → `InvalidArgument`.
pub(crate) fn json_error(text: &str, what: &str, e: serde_json::Error) -> Error {
    let status = match e.classify() {
        serde_json::error::Category::Data => Status::InvalidArgument,
        _ => Status::InvalidJson,
    };
    if status == Status::InvalidArgument && e.to_string().starts_with("invalid type") {
        // Wrong type at the top: JSON of another type, or not JSON at all? Only the error path
        // pays for the second look.
        return match serde_json::from_str::<de::IgnoredAny>(text) {
            Ok(_) => Error::invalid(format!("{what} must be a JSON object")),
            Err(e) => Error::new(
                Status::InvalidJson,
                format!("{what} are not valid JSON: {e}"),
            ),
        };
    }
    Error::new(status, format!("{what} are not valid: {e}"))
}

/// A member's value where a string or a number is expected: the text borrowed from the input
/// when it holds no escape, the number as read, or the name of the JSON type that came instead
/// (whose content is read, within serde_json's depth limit, and dropped).
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(serde_json::Number),
    Other(&'static str),
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Scalar<'de>, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Scalar<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Scalar::Other("a number"), Scalar::Num))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Other("a boolean"))
    }

    fn visit_unit<E>(self) -> std::result::Result<Scalar<'de>, E> {
        Ok(Scalar::Other("null"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Scalar<'de>, A::Error> {
        // Read as values, not `IgnoredAny`: serde_json's depth limit then holds inside too.
        while seq.next_element::<Scalar<'de>>()?.is_some() {}
        Ok(Scalar::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Scalar<'de>, A::Error> {
        while map.next_entry::<Text<'de>, Scalar<'de>>()?.is_some() {}
        Ok(Scalar::Other("an object"))
    }
}

/// An object's key, borrowed from the text when it can be.
pub(crate) fn next_key<'de, A: MapAccess<'de>>(
    map: &mut A,
) -> std::result::Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_key::<Text<'de>>()?.map(|k| k.0))
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
