//! The options of a create request: parsed from the caller's JSON, checked before any traffic.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{parse_object, type_name};
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
        let fields = parse_object(text, "options", MAX_OPTIONS_LEN)?;
        let mut url = None;
        let mut req = OfflineDownload::empty(target);
        for (key, value) in fields.0 {
            match (&*key, target) {
                ("url", _) => url = Some(string_field("url", value)?),
                ("fileName", _) => req.file_name = Some(string_field("fileName", value)?),
                ("callBackUrl", _) => req.callback_url = Some(string_field("callBackUrl", value)?),
                ("dirID", Target::Drive) => req.dir_id = Some(dir_id(value)?),
                ("businessDirID", Target::Image) => {
                    req.business_dir_id = Some(string_field("businessDirID", value)?)
                }
                (other, _) => {
                    let keys = match target {
                        Target::Drive => DRIVE_KEYS,
                        Target::Image => IMAGE_KEYS,
                    };
                    return Err(Error::invalid(format!(
                        "options: unknown key `{}` (the keys are {keys}; names are case-sensitive)",
                        printable(other, 64)
                    )));
                }
            }
        }
        req.url = url.ok_or_else(|| Error::invalid("options: `url` is required"))?;
        req.validate()?;
        Ok(req)
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        parse_http_url(&self.url).map_err(|why| Error::invalid(format!("options: `url` {why}")))?;
        if let Some(cb) = &self.callback_url {
            parse_http_url(cb)
                .map_err(|why| Error::invalid(format!("options: `callBackUrl` {why}")))?;
        }
        if let Some(name) = &self.file_name {
            check_file_name(name)?;
        }
        if self.business_dir_id.as_deref() == Some("") {
            return Err(Error::invalid("options: `businessDirID` is empty"));
        }
        if self.dir_id == Some(0) {
            return Err(Error::invalid(
                "options: `dirID` must be a positive integer (0 is the root folder, which the service refuses)",
            ));
        }
        Ok(())
    }

    /// The JSON request body.
    pub(crate) fn body(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self)
            .map_err(|e| Error::new(crate::Status::Internal, format!("serialise options: {e}")))
    }
}

fn string_field(name: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::invalid(format!(
            "options: `{name}` must be a string, not {}",
            type_name(&other)
        ))),
    }
}

fn dir_id(value: Value) -> Result<u64> {
    let bad = |what: &str| {
        Error::invalid(format!(
            "options: `dirID` must be a positive integer, not {what}"
        ))
    };
    match &value {
        Value::Number(n) => match n.as_u64() {
            Some(id) if id > 0 && id <= i64::MAX as u64 => Ok(id),
            Some(0) => Err(bad("0 (the root folder, which the service refuses)")),
            Some(_) => Err(bad("a number above 2^63-1")),
            None if n.is_i64() => Err(bad("a negative number")),
            None => Err(bad("a fraction or out-of-range number")),
        },
        other => Err(bad(type_name(other))),
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
    fn extension_of_file_name_is_not_checked() {
        assert!(
            OfflineDownload::from_json(r#"{"url":"http://x/","fileName":"movie.mkv"}"#).is_ok()
        );
    }
}
