//! A local OAuth2 token endpoint (client-credentials grant) that counts the
//! requests it answers, for the SMTP XOAUTH2 tests; pair it with an
//! [`crate::servers::SmtpServer`] whose `xoauth2_token_file` is
//! [`OAuthServer::token_file`].

use std::path::PathBuf;

use serde_json::Value;

use crate::servers::{Process, free_port};

/// The client the endpoint knows.
pub const CLIENT_ID: &str = "cmsi-mail-test";
/// Its secret.
pub const CLIENT_SECRET: &str = "s3cret-client-value";
/// The scope it requires.
pub const SCOPE: &str = "https://outlook.office365.com/.default";

/// The endpoint, on `http://127.0.0.1:PORT/token`.
pub struct OAuthServer {
    _process: Process,
    state: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

impl OAuthServer {
    /// Starts an endpoint whose tokens live `expires_in` seconds.
    pub fn start(expires_in: u64) -> OAuthServer {
        let state = tempfile::tempdir().expect("tempdir");
        // The SMTP server reads the file before any token is issued.
        std::fs::write(state.path().join("token"), "no token issued yet").expect("token file");
        let port = free_port();
        let args = [
            "--port".to_owned(),
            port.to_string(),
            "--state".to_owned(),
            state.path().display().to_string(),
            "--client-id".to_owned(),
            CLIENT_ID.to_owned(),
            "--client-secret".to_owned(),
            CLIENT_SECRET.to_owned(),
            "--scope".to_owned(),
            SCOPE.to_owned(),
            "--expires-in".to_owned(),
            expires_in.to_string(),
        ];
        let process = Process::start("oauth_server.py", &args);
        OAuthServer {
            _process: process,
            state,
            port,
        }
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The file that holds the token last issued.
    pub fn token_file(&self) -> PathBuf {
        self.state.path().join("token")
    }

    /// Makes the SMTP server refuse every token issued so far.
    pub fn revoke(&self) {
        std::fs::write(self.token_file(), "revoked").expect("token file");
    }

    /// Every request answered: `{"ok": true, "token": …}` or `{"ok": false, "why": …}`.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.path().join("requests"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("request log"))
            .collect()
    }

    /// How many tokens it issued.
    pub fn issued(&self) -> usize {
        self.requests().iter().filter(|r| r["ok"] == true).count()
    }
}
