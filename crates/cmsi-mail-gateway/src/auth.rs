//! ESB authentication: the app (`bk_app_code` + `bk_app_secret`) and the user
//! (`bk_token` or `bk_username`), from the `X-Bkapi-Authorization` header or
//! from the request itself.

use axum::http::HeaderMap;
use cmsi_mail::SendMailRequest;
use serde::Deserialize;

use crate::config::AppRegistry;

/// The header the current BlueKing SDKs send the credentials in.
pub(crate) const AUTHORIZATION_HEADER: &str = "x-bkapi-authorization";

/// Credentials as the caller gave them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    bk_app_code: Option<String>,
    #[serde(default)]
    bk_app_secret: Option<String>,
    #[serde(default)]
    bk_token: Option<String>,
    #[serde(default)]
    bk_username: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Why a caller is refused; the message is what the response says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("X-Bkapi-Authorization is not a JSON object of credentials: {0}")]
    Header(String),
    #[error(
        "access_token is not supported by this gateway: authenticate with bk_app_code and bk_app_secret"
    )]
    AccessToken,
    #[error("APP Code [bk_app_code] cannot be empty")]
    NoAppCode,
    #[error("APP Secret [bk_app_secret] cannot be empty")]
    NoAppSecret,
    #[error("APP Code [{0}] and APP Secret [bk_app_secret] do not match a registered app")]
    AppMismatch(String),
    #[error("User authentication failed: provide bk_token or bk_username")]
    NoUser,
    #[error(
        "User authentication failed: app [{0}] may not name its user by bk_username alone; provide bk_token"
    )]
    UsernameNotAllowed(String),
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

impl Credentials {
    /// The credentials inside a request (older SDKs send them so).
    pub(crate) fn of(request: &SendMailRequest<'_>) -> Credentials {
        Credentials {
            bk_app_code: request.bk_app_code.clone(),
            bk_app_secret: request.bk_app_secret.clone(),
            bk_token: request.bk_token.clone(),
            bk_username: request.bk_username.clone(),
            access_token: None,
        }
    }

    /// The header's credentials when it is present (they win over the body);
    /// else those of the request.
    pub(crate) fn pick(
        headers: &HeaderMap,
        from_request: Credentials,
    ) -> Result<Credentials, AuthError> {
        let Some(value) = headers.get(AUTHORIZATION_HEADER) else {
            return Ok(from_request);
        };
        let text = value
            .to_str()
            .map_err(|_| AuthError::Header("it is not ASCII text".into()))?;
        serde_json::from_str::<Credentials>(text)
            .map_err(|error| AuthError::Header(error.to_string()))
    }

    /// Checks the credentials against the registered apps; returns the app code.
    pub(crate) fn authenticate(&self, apps: &AppRegistry) -> Result<String, AuthError> {
        if non_empty(self.access_token.as_ref()).is_some() {
            return Err(AuthError::AccessToken);
        }
        let code = non_empty(self.bk_app_code.as_ref()).ok_or(AuthError::NoAppCode)?;
        let secret = non_empty(self.bk_app_secret.as_ref()).ok_or(AuthError::NoAppSecret)?;
        let allow_username = apps
            .check(code, secret)
            .ok_or_else(|| AuthError::AppMismatch(code.to_owned()))?;
        // bk_token cannot be verified here (no BlueKing login service); it is
        // required as the ESB requires it, and the app secret is the proof.
        match (
            non_empty(self.bk_token.as_ref()),
            non_empty(self.bk_username.as_ref()),
        ) {
            (Some(_), _) => Ok(code.to_owned()),
            (None, Some(_)) if allow_username => Ok(code.to_owned()),
            (None, Some(_)) => Err(AuthError::UsernameNotAllowed(code.to_owned())),
            (None, None) => Err(AuthError::NoUser),
        }
    }
}
