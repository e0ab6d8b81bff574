//! `[transport.smtp]`: the ESB's SMTP settings.

use std::path::PathBuf;

use serde::Deserialize;

/// SMTP settings, named as the ESB names them so that an operator can carry
/// them over.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name or address.
    pub smtp_host: String,
    /// Server port; default 465 with `smtp_usessl`, else 25.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Login for AUTH (PLAIN or LOGIN); no AUTH when absent.
    #[serde(default)]
    pub smtp_user: Option<String>,
    /// Password for AUTH.
    #[serde(default)]
    pub smtp_pwd: Option<String>,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    #[serde(default)]
    pub smtp_usessl: bool,
    /// STARTTLS, required: a server that does not offer it is an error.
    #[serde(default)]
    pub smtp_usetls: bool,
    /// PEM file of a CA to trust besides the public roots (a private relay).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one SMTP step may take (default 10).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Attempts for a transient failure, the first included (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Name sent in EHLO (default: `localhost` as an address literal).
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Idle connections kept for reuse (default 4).
    #[serde(default)]
    pub pool_size: Option<usize>,
    /// How to log in: `password` (AUTH PLAIN or LOGIN with `smtp_user` and
    /// `smtp_pwd`, the default) or `xoauth2` (AUTH XOAUTH2 with `smtp_user`
    /// and an OAuth2 bearer token).
    #[serde(default)]
    pub auth: Option<SmtpAuth>,
    /// A bearer token for XOAUTH2, used as it is and never refreshed (the
    /// CLI takes it from `CMSI_MAIL_SMTP_TOKEN`).
    #[serde(default)]
    pub oauth_token: Option<String>,
    /// The token endpoint of the OAuth2 client-credentials flow, e.g.
    /// `https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`.
    #[serde(default)]
    pub oauth_token_url: Option<String>,
    /// The client (application) ID of the flow.
    #[serde(default)]
    pub oauth_client_id: Option<String>,
    /// The client secret of the flow (the CLI also takes it from
    /// `CMSI_MAIL_OAUTH_CLIENT_SECRET`).
    #[serde(default)]
    pub oauth_client_secret: Option<String>,
    /// The scope asked for, e.g. `https://outlook.office365.com/.default`.
    #[serde(default)]
    pub oauth_scope: Option<String>,
}

/// How the transport logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuth {
    /// AUTH PLAIN or LOGIN with `smtp_user` and `smtp_pwd`.
    Password,
    /// AUTH XOAUTH2 with `smtp_user` and an OAuth2 bearer token.
    Xoauth2,
}

/// Everything but the password, the token and the client secret.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_user", &self.smtp_user)
            .field("smtp_pwd", &self.smtp_pwd.as_ref().map(|_| "<redacted>"))
            .field("smtp_usessl", &self.smtp_usessl)
            .field("smtp_usetls", &self.smtp_usetls)
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_attempts", &self.max_attempts)
            .field("hello_name", &self.hello_name)
            .field("pool_size", &self.pool_size)
            .field("auth", &self.auth)
            .field(
                "oauth_token",
                &self.oauth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("oauth_token_url", &self.oauth_token_url)
            .field("oauth_client_id", &self.oauth_client_id)
            .field(
                "oauth_client_secret",
                &self.oauth_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("oauth_scope", &self.oauth_scope)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    Plain,
    StartTls,
    Implicit,
}
