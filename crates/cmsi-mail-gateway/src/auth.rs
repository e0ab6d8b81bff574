//! ESB authentication: the app (`bk_app_code` + `bk_app_secret`) and the user
//! (`bk_token` or `bk_username`), from the `X-Bkapi-Authorization` header or
//! from the request itself.
//!
//! Credentials are found without building the request: the header is read
//! before the body, and a body is scanned for its four credential fields only
//! (serde skips everything else without allocating; a form's pairs are read
//! one at a time). Only an authenticated app's body is parsed in full.

use std::borrow::Cow;
use std::fmt;

use axum::http::HeaderMap;
use cmsi_mail::{Problem, RequestError};
use serde::Deserialize;

use crate::config::AppRegistry;

/// The header the current BlueKing SDKs send the credentials in.
pub(crate) const AUTHORIZATION_HEADER: &str = "x-bkapi-authorization";

/// Credentials as the caller gave them, compared exactly as given.
#[derive(Default, Deserialize)]
pub(crate) struct Credentials<'a> {
    #[serde(default, borrow)]
    bk_app_code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    bk_app_secret: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    bk_token: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    bk_username: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    access_token: Option<Cow<'a, str>>,
}

/// The app code only: the secret and the tokens are never shown.
impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |value: &Option<Cow<'_, str>>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("bk_app_code", &self.bk_app_code)
            .field("bk_app_secret", &redacted(&self.bk_app_secret))
            .field("bk_token", &redacted(&self.bk_token))
            .field("bk_username", &self.bk_username)
            .field("access_token", &redacted(&self.access_token))
            .finish()
    }
}

/// Why a caller is refused; the message is what the response says. No message
/// quotes a header or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("X-Bkapi-Authorization is not a JSON object of credentials{0}")]
    Header(&'static str),
    #[error(
        "access_token is not supported by this gateway: authenticate with bk_app_code and bk_app_secret"
    )]
    AccessToken,
    #[error("APP Code [bk_app_code] cannot be empty")]
    NoAppCode,
    #[error("APP Secret [bk_app_secret] cannot be empty")]
    NoAppSecret,
    #[error("APP Code [{0}] and APP Secret [bk_app_secret] do not match a registered app")]
    AppMismatch(ShownCode),
    #[error("User authentication failed: provide bk_token or bk_username")]
    NoUser,
    #[error(
        "User authentication failed: app [{0}] may not name its user by bk_username alone; provide bk_token"
    )]
    UsernameNotAllowed(String),
    #[error(
        "app [{app}] may not send for tenant [{tenant}] (X-Bk-Tenant-Id): it may send for {allowed}"
    )]
    Tenant {
        app: String,
        tenant: ShownCode,
        allowed: String,
    },
}

/// What a route requires of its caller: the ESB's routes an app and a user,
/// the bk-cmsi API an app only (its clients send app credentials alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Require {
    AppAndUser,
    App,
}

/// An app code as a message may quote it: as given when it is short printable
/// text, else a placeholder (a caller could send megabytes or control codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShownCode(String);

impl ShownCode {
    pub(crate) fn of(code: &str) -> ShownCode {
        const LONGEST: usize = 64;
        if code.len() <= LONGEST && !code.chars().any(char::is_control) {
            ShownCode(code.to_owned())
        } else {
            ShownCode("(not shown: too long or not printable)".to_owned())
        }
    }
}

impl fmt::Display for ShownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-empty value, exactly as given: `"monitor "` is not `"monitor"`.
fn given<'v>(value: &'v Option<Cow<'_, str>>) -> Option<&'v str> {
    value.as_deref().filter(|value| !value.is_empty())
}

/// Whether the first non-blank byte opens a JSON object (serde would also read
/// a struct from an array).
pub(crate) fn opens_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{')
}

impl Credentials<'static> {
    /// The header's credentials, or `None` when there is no header. They win
    /// over the body's.
    pub(crate) fn from_header(headers: &HeaderMap) -> Result<Option<Self>, AuthError> {
        let Some(value) = headers.get(AUTHORIZATION_HEADER) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| AuthError::Header(": it is not ASCII text"))?;
        if !opens_object(text.as_bytes()) {
            return Err(AuthError::Header(""));
        }
        let credentials: Credentials<'_> = serde_json::from_str(text).map_err(|error| {
            AuthError::Header(if error.is_data() {
                ": every credential must be a string"
            } else {
                ": it is not valid JSON"
            })
        })?;
        Ok(Some(credentials.into_owned()))
    }
}

impl<'a> Credentials<'a> {
    /// The credential fields of a JSON body, without reading the rest into
    /// memory. Errors name the field, or `request` for broken JSON, and never
    /// quote the body.
    pub(crate) fn from_json(body: &'a [u8]) -> Result<Self, RequestError> {
        if !opens_object(body) {
            return Err(RequestError::new(
                "request",
                Problem::Malformed("the request must be a JSON object".to_owned()),
            ));
        }
        // serde skips the strings it ignores without checking their UTF-8;
        // the full parse checks the whole body, and so does the scan (one
        // SIMD pass), so that both accept the same bodies.
        if simdutf8::basic::from_utf8(body).is_err() {
            return Err(RequestError::new(
                "request",
                Problem::Malformed("the body is not valid UTF-8".to_owned()),
            ));
        }
        let not_json = |error| {
            // Syntax errors say where, never what: no part of the body.
            RequestError::new(
                "request",
                Problem::Malformed(format!("the body is not valid JSON: {error}")),
            )
        };
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let credentials = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_data() && path != "." {
                RequestError::new(path, Problem::Malformed("must be a string".to_owned()))
            } else {
                not_json(inner)
            }
        })?;
        deserializer.end().map_err(not_json)?;
        Ok(credentials)
    }

    /// The credential fields of a form body or query string, read pair by
    /// pair (no map of every key is built).
    pub(crate) fn from_pairs(encoded: &'a [u8]) -> Result<Self, RequestError> {
        let mut credentials = Credentials::default();
        for (key, value) in form_urlencoded::parse(encoded) {
            let slot = match key.as_ref() {
                "bk_app_code" => &mut credentials.bk_app_code,
                "bk_app_secret" => &mut credentials.bk_app_secret,
                "bk_token" => &mut credentials.bk_token,
                "bk_username" => &mut credentials.bk_username,
                "access_token" => &mut credentials.access_token,
                _ => continue,
            };
            if slot.is_some() {
                return Err(RequestError::new(
                    key.into_owned(),
                    Problem::Malformed("is given more than once".to_owned()),
                ));
            }
            *slot = Some(value);
        }
        Ok(credentials)
    }

    /// `bk_app_code`, `bk_app_secret`, `bk_token`, `bk_username`, as given.
    pub(crate) fn fields(&self) -> [Option<&str>; 4] {
        [
            self.bk_app_code.as_deref(),
            self.bk_app_secret.as_deref(),
            self.bk_token.as_deref(),
            self.bk_username.as_deref(),
        ]
    }

    fn into_owned(self) -> Credentials<'static> {
        let owned = |value: Option<Cow<'_, str>>| value.map(|v| Cow::Owned(v.into_owned()));
        Credentials {
            bk_app_code: owned(self.bk_app_code),
            bk_app_secret: owned(self.bk_app_secret),
            bk_token: owned(self.bk_token),
            bk_username: owned(self.bk_username),
            access_token: owned(self.access_token),
        }
    }

    /// Checks the credentials against the registered apps; returns the app code.
    pub(crate) fn authenticate(
        &self,
        apps: &AppRegistry,
        require: Require,
    ) -> Result<String, AuthError> {
        if given(&self.access_token).is_some() {
            return Err(AuthError::AccessToken);
        }
        let code = given(&self.bk_app_code).ok_or(AuthError::NoAppCode)?;
        let secret = given(&self.bk_app_secret).ok_or(AuthError::NoAppSecret)?;
        let allow_username = apps
            .check(code, secret)
            .ok_or_else(|| AuthError::AppMismatch(ShownCode::of(code)))?;
        if require == Require::App {
            return Ok(code.to_owned());
        }
        // bk_token cannot be verified here (no BlueKing login service); it is
        // required as the ESB requires it, and the app secret is the proof.
        match (given(&self.bk_token), given(&self.bk_username)) {
            (Some(_), _) => Ok(code.to_owned()),
            (None, Some(_)) if allow_username => Ok(code.to_owned()),
            (None, Some(_)) => Err(AuthError::UsernameNotAllowed(code.to_owned())),
            (None, None) => Err(AuthError::NoUser),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AppConfig, Apps};

    fn apps() -> AppRegistry {
        let mut apps = Apps::new();
        apps.insert(
            "monitor".into(),
            AppConfig {
                secret: Some("s3cret".into()),
                ..AppConfig::default()
            },
        );
        AppRegistry::new(&apps, |_| None).unwrap()
    }

    #[test]
    fn credentials_are_compared_exactly() {
        let apps = apps();
        let check = |code: &str, secret: &str| {
            let body =
                serde_json::json!({"bk_app_code": code, "bk_app_secret": secret, "bk_token": "t"})
                    .to_string();
            Credentials::from_json(body.as_bytes())
                .unwrap()
                .authenticate(&apps, Require::AppAndUser)
        };
        assert_eq!(check("monitor", "s3cret"), Ok("monitor".to_owned()));
        for (code, secret) in [
            ("monitor ", "s3cret"),
            (" monitor", "s3cret"),
            ("monitor", " s3cret"),
            ("monitor", "s3cret\u{3000}"),
            ("monitor", "s3cret\t"),
            ("monitor", "s3cret\u{a0}"),
            ("monitor\t", "s3cret"),
            ("Monitor", "s3cret"),
        ] {
            assert!(
                matches!(check(code, secret), Err(AuthError::AppMismatch(_))),
                "{code:?} {secret:?}"
            );
        }
    }

    #[test]
    fn an_app_alone_is_enough_where_no_user_is_required() {
        let apps = apps();
        let app_only =
            Credentials::from_pairs(b"bk_app_code=monitor&bk_app_secret=s3cret").unwrap();
        assert_eq!(
            app_only.authenticate(&apps, Require::App),
            Ok("monitor".to_owned())
        );
        assert_eq!(
            app_only.authenticate(&apps, Require::AppAndUser),
            Err(AuthError::NoUser)
        );
        let wrong = Credentials::from_pairs(b"bk_app_code=monitor&bk_app_secret=nope").unwrap();
        assert!(matches!(
            wrong.authenticate(&apps, Require::App),
            Err(AuthError::AppMismatch(_))
        ));
    }

    #[test]
    fn the_header_is_never_quoted() {
        let mut headers = HeaderMap::new();
        for header in [
            r#""{\"bk_app_code\":\"monitor\",\"bk_app_secret\":\"s3cret\"}""#,
            r#"["monitor", "s3cret"]"#,
            r#"{"bk_app_code": "monitor", "bk_app_secret": ["s3cret"]}"#,
            r#"{"bk_app_code": "monitor", "bk_app_secret": "s3cret""#,
        ] {
            headers.insert(AUTHORIZATION_HEADER, header.parse().unwrap());
            let error = Credentials::from_header(&headers).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.starts_with("X-Bkapi-Authorization is not a JSON object"));
        }
    }

    #[test]
    fn bodies_are_scanned_for_credentials_only() {
        let body = br#"{"attachments": [{}, {"content": "x"}], "bk_app_code": "monitor",
            "nested": {"bk_app_secret": "no"}, "bk_app_secret": "s3cret", "bk_token": null}"#;
        let credentials = Credentials::from_json(body).unwrap();
        assert_eq!(credentials.bk_app_code.as_deref(), Some("monitor"));
        assert_eq!(credentials.bk_app_secret.as_deref(), Some("s3cret"));
        assert_eq!(credentials.bk_token, None);

        let error = Credentials::from_json(br#"{"bk_app_secret": 12345678}"#).unwrap_err();
        assert_eq!(error.field(), "bk_app_secret");
        assert!(!error.to_string().contains("12345678"), "{error}");
        let error = Credentials::from_json(b"[1]").unwrap_err();
        assert_eq!(error.field(), "request");

        let form = b"a=&a=&bk_app_code=monitor&bk_app_secret=s%33cret&title=x";
        let credentials = Credentials::from_pairs(form).unwrap();
        assert_eq!(credentials.bk_app_secret.as_deref(), Some("s3cret"));
        let error = Credentials::from_pairs(b"bk_app_code=a&bk_app_code=b").unwrap_err();
        assert_eq!(error.field(), "bk_app_code");
    }

    #[test]
    fn debug_redacts_the_secrets() {
        let credentials = Credentials::from_pairs(
            b"bk_app_code=monitor&bk_app_secret=s3cret&bk_token=t0ken&bk_username=admin",
        )
        .unwrap();
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert!(
            shown.contains("monitor") && shown.contains("admin"),
            "{shown}"
        );
    }
}
