//! The options of a create request: parsed from the caller's JSON, checked before any traffic.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::json::{check_len, json_error, next_key, Scalar};
use crate::redact::printable;
use crate::url::parse_http_url;

/// Largest options text accepted, in bytes.
pub const MAX_OPTIONS_LEN: usize = 64 * 1024;
/// Longest `fileName` accepted, in characters (the common file-system limit).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Which offline download endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// The cloud drive: `/api/v1/offline/download`.
    #[default]
    Drive,
    /// Image hosting: `/api/v1/oss/offline/download` (images only, at most 100 MB).
    Image,
}

/// A checked create request. Serialises to exactly the request body: absent fields are left
/// out, `dirID` is a JSON number, `businessDirID` a string, and for image hosting `type` is 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfflineDownload {
    /// Which endpoint the request is for.
    #[serde(skip)]
    pub target: Target,
    /// The resource to download (`http`/`https`).
    pub url: String,
    /// The name to save it under.
    #[serde(rename = "fileName", skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The folder to save into (positive; the root folder 0 is refused by the service).
    #[serde(rename = "dirID", skip_serializing_if = "Option::is_none")]
    pub dir_id: Option<u64>,
    /// A URL the service POSTs to when the task ends.
    #[serde(rename = "callBackUrl", skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Image hosting only: the folder to save into (a string).
    #[serde(rename = "businessDirID", skip_serializing_if = "Option::is_none")]
    pub business_dir_id: Option<String>,
    /// Image hosting only: always 1, set by the library.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<u8>,
}

const DRIVE_KEYS: &str = "url, fileName, dirID, callBackUrl";
const IMAGE_KEYS: &str = "url, fileName, businessDirID, callBackUrl";

impl OfflineDownload {
    /// A request for `url` with no other options, checked.
    pub fn new(url: &str) -> Result<OfflineDownload> {
        let mut req = OfflineDownload::empty(Target::Drive);
        req.url = url.to_owned();
        req.validate()?;
        Ok(req)
    }

    fn empty(target: Target) -> OfflineDownload {
        OfflineDownload {
            target,
            url: String::new(),
            file_name: None,
            dir_id: None,
            callback_url: None,
            business_dir_id: None,
            kind: (target == Target::Image).then_some(1),
        }
    }

    /// Parses and checks the caller's JSON options for the cloud drive
    /// (`{"url": ..., "fileName": ..., "dirID": ..., "callBackUrl": ...}`).
    pub fn from_json(text: &str) -> Result<OfflineDownload> {
        OfflineDownload::from_json_for(Target::Drive, text)
    }

    /// Parses and checks the caller's JSON options for `target`. Image hosting takes
    /// `businessDirID` (a string) instead of `dirID`; its `type` is set by the library.
    pub fn from_json_for(target: Target, text: &str) -> Result<OfflineDownload> {
        let f = Fields::parse(target, text)?;
        Ok(OfflineDownload {
            target,
            url: f.url.into_owned(),
            file_name: f.file_name.map(Cow::into_owned),
            dir_id: f.dir_id,
            callback_url: f.callback_url.map(Cow::into_owned),
            business_dir_id: f.business_dir_id.map(Cow::into_owned),
            kind: (target == Target::Image).then_some(1),
        })
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        validate(
            &self.url,
            self.callback_url.as_deref(),
            self.file_name.as_deref(),
            self.business_dir_id.as_deref(),
            self.dir_id,
        )
    }

    /// The JSON request body.
    pub(crate) fn body(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::new(crate::Status::Internal, format!("serialise options: {e}")))
    }
}

/// Options checked where they are, for a call that sends them: the body is the caller's own
/// text, which holds exactly the checked members (every key known and once, every value of
/// its type, `dirID` an integer literal) and so is the same JSON value as
/// [`OfflineDownload::body`] would write; nothing is parsed into owned strings and written
/// again. Image hosting's `"type":1` is added to it.
pub(crate) struct Checked<'a> {
    /// Which endpoint the request is for.
    pub target: Target,
    text: &'a str,
}

impl<'a> Checked<'a> {
    /// Parses and checks `text` as [`OfflineDownload::from_json_for`] does, with the same
    /// errors.
    pub(crate) fn new(target: Target, text: &'a str) -> Result<Checked<'a>> {
        Fields::parse(target, text)?;
        // The JSON whitespace around the object (RFC 8259 §2) is not sent.
        let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        Ok(Checked { target, text })
    }

    /// The request body.
    pub(crate) fn body(&self) -> Cow<'a, [u8]> {
        match self.target {
            Target::Drive => Cow::Borrowed(self.text.as_bytes()),
            Target::Image => {
                // A checked, trimmed object: it ends with `}` and has `url` before it.
                let open = self.text.strip_suffix('}').unwrap_or(self.text);
                Cow::Owned(format!("{open},\"type\":1}}").into_bytes())
            }
        }
    }
}

/// The members of a create request as the caller wrote them, borrowed from the text when
/// they hold no escape.
struct Fields<'a> {
    url: Cow<'a, str>,
    file_name: Option<Cow<'a, str>>,
    dir_id: Option<u64>,
    callback_url: Option<Cow<'a, str>>,
    business_dir_id: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> {
    /// Reads `text` member by member (no `Value` is built) and checks every rule. The first
    /// error of a member (an unknown key, a wrong type) wins over later ones, but not over
    /// the text not being JSON: parsing goes on to the end first.
    fn parse(target: Target, text: &'a str) -> Result<Fields<'a>> {
        check_len(text, "options", MAX_OPTIONS_LEN)?;
        let first = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = FieldsSeed {
            target,
            first: &first,
        }
        .deserialize(&mut de)
        .and_then(|f| de.end().map(|()| f))
        .map_err(|e| json_error(text, "options", e))?;
        if let Some(e) = first.into_inner() {
            return Err(e);
        }
        let url = parsed
            .url
            .ok_or_else(|| Error::invalid("options: `url` is required"))?;
        validate(
            &url,
            parsed.callback_url.as_deref(),
            parsed.file_name.as_deref(),
            parsed.business_dir_id.as_deref(),
            parsed.dir_id,
        )?;
        Ok(Fields {
            url,
            file_name: parsed.file_name,
            dir_id: parsed.dir_id,
            callback_url: parsed.callback_url,
            business_dir_id: parsed.business_dir_id,
        })
    }
}

/// What the parse found, before `url` is known to be there.
#[derive(Default)]
struct Parsed<'a> {
    url: Option<Cow<'a, str>>,
    file_name: Option<Cow<'a, str>>,
    dir_id: Option<u64>,
    callback_url: Option<Cow<'a, str>>,
    business_dir_id: Option<Cow<'a, str>>,
}

struct FieldsSeed<'s> {
    target: Target,
    /// The first error of a member, kept while the parse goes on.
    first: &'s RefCell<Option<Error>>,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Parsed<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Parsed<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Parsed<'de>, A::Error> {
        let mut p = Parsed::default();
        let mut seen = [false; 5];
        let note = |e: Error| {
            let mut first = self.first.borrow_mut();
            if first.is_none() {
                *first = Some(e);
            }
        };
        while let Some(key) = next_key(&mut map)? {
            let slot = match (&*key, self.target) {
                ("url", _) => 0,
                ("fileName", _) => 1,
                ("callBackUrl", _) => 2,
                ("dirID", Target::Drive) => 3,
                ("businessDirID", Target::Image) => 4,
                (other, _) => {
                    let keys = match self.target {
                        Target::Drive => DRIVE_KEYS,
                        Target::Image => IMAGE_KEYS,
                    };
                    note(Error::invalid(format!(
                        "options: unknown key `{}` (the keys are {keys}; names are case-sensitive)",
                        printable(other, 64)
                    )));
                    map.next_value::<Scalar<'de>>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(de::Error::custom(format_args!(
                    "key `{}` appears twice",
                    printable(&key, 64)
                )));
            }
            let value = map.next_value::<Scalar<'de>>()?;
            let checked = match slot {
                0 => string_field("url", value).map(|v| p.url = Some(v)),
                1 => string_field("fileName", value).map(|v| p.file_name = Some(v)),
                2 => string_field("callBackUrl", value).map(|v| p.callback_url = Some(v)),
                3 => dir_id(value).map(|v| p.dir_id = Some(v)),
                _ => string_field("businessDirID", value).map(|v| p.business_dir_id = Some(v)),
            };
            if let Err(e) = checked {
                note(e);
            }
        }
        Ok(p)
    }
}

/// Checks every field; the error names the field.
fn validate(
    url: &str,
    callback_url: Option<&str>,
    file_name: Option<&str>,
    business_dir_id: Option<&str>,
    dir_id: Option<u64>,
) -> Result<()> {
    parse_http_url(url).map_err(|why| Error::invalid(format!("options: `url` {why}")))?;
    if let Some(cb) = callback_url {
        parse_http_url(cb)
            .map_err(|why| Error::invalid(format!("options: `callBackUrl` {why}")))?;
    }
    if let Some(name) = file_name {
        check_file_name(name)?;
    }
    if business_dir_id == Some("") {
        return Err(Error::invalid("options: `businessDirID` is empty"));
    }
    if dir_id == Some(0) {
        return Err(Error::invalid(
            "options: `dirID` must be a positive integer (0 is the root folder, which the service refuses)",
        ));
    }
    Ok(())
}

fn string_field<'a>(name: &str, value: Scalar<'a>) -> Result<Cow<'a, str>> {
    match value {
        Scalar::Str(s) => Ok(s),
        Scalar::Num(_) => Err(type_error(name, "a number")),
        Scalar::Other(kind) => Err(type_error(name, kind)),
    }
}

fn type_error(name: &str, kind: &str) -> Error {
    Error::invalid(format!("options: `{name}` must be a string, not {kind}"))
}

fn dir_id(value: Scalar<'_>) -> Result<u64> {
    let bad = |what: &str| {
        Error::invalid(format!(
            "options: `dirID` must be a positive integer, not {what}"
        ))
    };
    match &value {
        Scalar::Num(n) => match n.as_u64() {
            Some(id) if id > 0 && id <= i64::MAX as u64 => Ok(id),
            Some(0) => Err(bad("0 (the root folder, which the service refuses)")),
            Some(_) => Err(bad("a number above 2^63-1")),
            None if n.is_i64() => Err(bad("a negative number")),
            None => Err(bad("a fraction or out-of-range number")),
        },
        Scalar::Str(_) => Err(bad("a string")),
        Scalar::Other(kind) => Err(bad(kind)),
    }
}

fn check_file_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("options: `fileName` {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    let chars = name.chars().count();
    if chars > MAX_FILE_NAME_CHARS {
        return bad(&format!(
            "is {chars} characters, longer than the limit of {MAX_FILE_NAME_CHARS}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\') || c.is_control())
    {
        return bad(&format!(
            "contains '{}' (no '/', '\\' or control characters)",
            c.escape_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn err(json: &str) -> Error {
        OfflineDownload::from_json(json).expect_err(json)
    }

    #[test]
    fn body_carries_only_given_fields_with_dir_id_as_number() {
        let r = OfflineDownload::from_json(
            r#"{"url":"https://x.com/a.mp4","dirID":10023,"fileName":"测试https离线下载.mp4"}"#,
        )
        .expect("valid");
        let body = String::from_utf8(r.body().expect("body")).expect("utf8");
        assert_eq!(
            body,
            r#"{"url":"https://x.com/a.mp4","fileName":"测试https离线下载.mp4","dirID":10023}"#
        );
        let r = OfflineDownload::from_json(r#"{"url":"http://x.com/"}"#).expect("valid");
        assert_eq!(r.body().expect("body"), br#"{"url":"http://x.com/"}"#);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases = [
            (r#"{}"#, "`url` is required"),
            (r#"{"url":5}"#, "`url` must be a string, not a number"),
            (r#"{"url":"ftp://x/y"}"#, "`url` is not an absolute"),
            (
                r#"{"url":"http://x/","dirID":0}"#,
                "`dirID` must be a positive integer",
            ),
            (r#"{"url":"http://x/","dirID":-3}"#, "not a negative number"),
            (r#"{"url":"http://x/","dirID":1.5}"#, "not a fraction"),
            (r#"{"url":"http://x/","dirID":"10023"}"#, "not a string"),
            (r#"{"url":"http://x/","dirID":1e300}"#, "`dirID`"),
            (
                r#"{"url":"http://x/","dirID":18446744073709551615}"#,
                "above 2^63-1",
            ),
            (
                r#"{"url":"http://x/","callBackUrl":"x"}"#,
                "`callBackUrl` is not an absolute",
            ),
            (
                r#"{"url":"http://x/","callBackUrl":null}"#,
                "`callBackUrl` must be a string, not null",
            ),
            (
                r#"{"url":"http://x/","fileName":""}"#,
                "`fileName` is empty",
            ),
            (
                r#"{"url":"http://x/","fileName":"a/b"}"#,
                "`fileName` contains '/'",
            ),
            (
                r#"{"url":"http://x/","fileName":"a\\b"}"#,
                "`fileName` contains '\\\\'",
            ),
            (
                r#"{"url":"http://x/","fileName":"a\nb"}"#,
                "`fileName` contains '\\n'",
            ),
            (r#"{"url":"http://x/","dirId":5}"#, "unknown key `dirId`"),
        ];
        for (json, want) in cases {
            let e = err(json);
            assert_eq!(e.status(), Status::InvalidArgument, "{json}");
            assert!(e.message().contains(want), "{json}: {}", e.message());
        }
        let long = format!(r#"{{"url":"http://x/","fileName":"{}"}}"#, "名".repeat(256));
        assert!(err(&long)
            .message()
            .contains("longer than the limit of 255"));
        assert!(OfflineDownload::from_json(&format!(
            r#"{{"url":"http://x/","fileName":"{}"}}"#,
            "名".repeat(255)
        ))
        .is_ok());
    }

    #[test]
    fn oversized_and_deep_inputs_are_refused() {
        let big = format!(
            r#"{{"url":"http://x/","fileName":"{}"}}"#,
            "a".repeat(MAX_OPTIONS_LEN)
        );
        assert!(err(&big).message().contains("limit of 65536 bytes"));
        let deep = format!(r#"{{"url":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000));
        assert_eq!(err(&deep).status(), Status::InvalidJson);
        let deep = "[".repeat(60_000);
        assert_eq!(err(&deep).status(), Status::InvalidJson);
    }

    #[test]
    fn image_hosting_takes_a_string_folder_and_sends_type_1() {
        let r = OfflineDownload::from_json_for(
            Target::Image,
            r#"{"url":"https://x.com/a.png","businessDirID":"7"}"#,
        )
        .expect("valid");
        assert_eq!(
            r.body().expect("body"),
            br#"{"url":"https://x.com/a.png","businessDirID":"7","type":1}"#
        );
        for (json, want) in [
            (
                r#"{"url":"https://x/a.png","businessDirID":7}"#,
                "`businessDirID` must be a string",
            ),
            (
                r#"{"url":"https://x/a.png","dirID":7}"#,
                "unknown key `dirID`",
            ),
            (
                r#"{"url":"https://x/a.png","type":1}"#,
                "unknown key `type`",
            ),
        ] {
            let e = OfflineDownload::from_json_for(Target::Image, json).expect_err(json);
            assert!(e.message().contains(want), "{json}: {}", e.message());
        }
    }

    #[test]
    fn the_c_abi_sends_the_callers_text_trimmed_and_image_hosting_gets_its_type() {
        let c = Checked::new(
            Target::Drive,
            " \n{\"url\":\"http://x/\", \"dirID\":7}\r\n\t",
        )
        .expect("valid");
        assert_eq!(&*c.body(), br#"{"url":"http://x/", "dirID":7}"#);
        let c = Checked::new(Target::Image, "{\"url\":\"http://x/a.png?}\"} \n").expect("valid");
        assert_eq!(&*c.body(), br#"{"url":"http://x/a.png?}","type":1}"#);
        for bad in [
            "{\"url\":\"http://x/\"} x",
            "\u{feff}{\"url\":\"http://x/\"}",
        ] {
            assert!(Checked::new(Target::Drive, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn extension_of_file_name_is_not_checked() {
        assert!(
            OfflineDownload::from_json(r#"{"url":"http://x/","fileName":"movie.mkv"}"#).is_ok()
        );
    }
}
