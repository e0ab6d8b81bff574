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
}

/// Everything but the password.
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
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    Plain,
    StartTls,
    Implicit,
}
