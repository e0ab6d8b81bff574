//! The configuration file: TOML with the ESB's key names.
//!
//! ```toml
//! mail_sender = "noreply@example.com"
//! [transport]
//! kind = "smtp"                # file | smtp | ses
//! [transport.file]
//! dir = "outbox"
//! [transport.smtp]
//! smtp_host = "127.0.0.1"
//! smtp_port = 2525
//! smtp_user = "testuser"
//! smtp_pwd = "testpass"        # or CMSI_MAIL_SMTP_PWD in the environment
//! smtp_usetls = true
//! ca_file = "cert.pem"
//! # auth = "xoauth2"         # OAuth2 instead of smtp_pwd; then either
//! # oauth_token_url = "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token"
//! # oauth_client_id = "…"
//! # oauth_client_secret = "…" # or CMSI_MAIL_OAUTH_CLIENT_SECRET
//! # oauth_scope = "https://outlook.office365.com/.default"
//! # or a token in CMSI_MAIL_SMTP_TOKEN
//! [transport.ses]
//! region = "us-east-1"
//! [dkim]
//! domain = "example.com"
//! selector = "mail2026"
//! key_file = "dkim.pem"        # PEM, RSA or Ed25519
//! [users]
//! admin = "admin@example.com"
//! [server]
//! listen = "127.0.0.1:8025"
//! max_body_bytes = 33554432
//! outbox_ui = true             # the outbox viewer at /outbox/ (file transport)
//! [apps.monitor]
//! secret = "s3cret"          # or: secret_env = "MONITOR_SECRET"
//! allow_bk_username = true
//! [queue]
//! url = "postgres://cmsi_mail@db.example.com/cmsi_mail"   # or CMSI_MAIL_QUEUE_URL
//! workers = 2
//! tenants = ["acme"]         # only for these tenants (X-Bk-Tenant-Id)
//! [tenants.acme]
//! mail_sender = "noreply@acme.example"
//! users_file = "acme-users.toml"   # or a [tenants.acme.users] table
//! [channels.weixin]
//! dest_url = "https://notify.example.com/weixin"
//! timeout_secs = 30
//! ```
//!
//! `text_alternative = false` (top level) sends HTML mail without its
//! plain-text part. Relative paths (`dir`, `ca_file`, `users_file`,
//! `key_file`) are relative to the file's own directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use cmsi_mail::{ComposeOptions, DkimSigner, Mailbox, StaticDirectory, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_ses::{SesSettings, SesTransport};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use serde::Deserialize;

use crate::PLACEHOLDER_SENDER;

/// Environment variables that override secrets of the file.
const SMTP_USER_ENV: &str = "CMSI_MAIL_SMTP_USER";
const SMTP_PWD_ENV: &str = "CMSI_MAIL_SMTP_PWD";
const QUEUE_URL_ENV: &str = "CMSI_MAIL_QUEUE_URL";

/// A mailer over any transport, as `send` and `serve` build them.
pub(crate) type Mailer = cmsi_mail::Mailer<Box<dyn Transport>>;
const SMTP_TOKEN_ENV: &str = "CMSI_MAIL_SMTP_TOKEN";
const OAUTH_SECRET_ENV: &str = "CMSI_MAIL_OAUTH_CLIENT_SECRET";

/// Where `send` and `serve` drop mail when nothing is configured.
const DEFAULT_OUTBOX: &str = "outbox";

/// The `[users]` table of a TOML file.
pub(crate) fn load_users(path: &Path) -> anyhow::Result<StaticDirectory> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    StaticDirectory::from_toml(&text).with_context(|| path.display().to_string())
}

/// The configured sender, or the placeholder; `setting` names where it came from.
pub(crate) fn parse_sender(sender: Option<&str>, setting: &str) -> anyhow::Result<Mailbox> {
    let sender = sender.unwrap_or(PLACEHOLDER_SENDER);
    Mailbox::parse(sender).with_context(|| format!("{setting} {sender:?}"))
}

/// The options `send` and `serve` share: where the configuration is, and what
/// on the command line overrides it.
#[derive(clap::Args)]
pub(crate) struct DeliveryArgs {
    /// Configuration file (TOML); without one, mail is dropped into ./outbox.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// TOML file with a `[users]` table; replaces the config's.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Transport, overriding the config's `[transport] kind`.
    #[arg(long, value_enum)]
    transport: Option<TransportKind>,
    /// Directory for the file transport (implies `--transport file` unless
    /// another is given).
    #[arg(long, value_name = "DIR")]
    outbox: Option<PathBuf>,
}

impl DeliveryArgs {
    /// The configuration file with the command line's `--users`.
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(users) = &self.users {
            config.load_users(users)?;
        }
        Ok(config)
    }

    /// The mailer `config` describes, with the command line's transport
    /// overrides. Takes the users out of `config`.
    pub(crate) async fn mailer(
        &self,
        config: &mut Config,
    ) -> anyhow::Result<cmsi_mail::Mailer<Box<dyn Transport>>> {
        let transport = self.transport(config).await?;
        config.mailer(transport)
    }

    /// The transport `config` describes, with the command line's overrides.
    pub(crate) async fn transport(&self, config: &Config) -> anyhow::Result<Box<dyn Transport>> {
        config
            .transport(self.transport_kind(), self.outbox.as_deref())
            .await
    }

    /// The directory mail is dropped into, when the transport is the file one.
    pub(crate) fn outbox_dir(&self, config: &Config) -> Option<PathBuf> {
        (config.kind(self.transport_kind()) == TransportKind::File)
            .then(|| config.file_dir(self.outbox.as_deref()))
    }

    /// The transport's kind as the metrics label it: `file`, `smtp`, `ses`.
    pub(crate) fn transport_label(&self, config: &Config) -> &'static str {
        match config.kind(self.transport_kind()) {
            TransportKind::File => "file",
            TransportKind::Smtp => "smtp",
            TransportKind::Ses => "ses",
        }
    }

    /// The command line's choice of transport, if it makes one.
    fn transport_kind(&self) -> Option<TransportKind> {
        self.transport
            .or(self.outbox.as_ref().map(|_| TransportKind::File))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    mail_sender: Option<String>,
    #[serde(default)]
    transport: TransportConfig,
    #[serde(default)]
    users: StaticDirectory,
    #[serde(default)]
    pub(crate) server: cmsi_mail_gateway::ServerConfig,
    #[serde(default)]
    pub(crate) apps: cmsi_mail_gateway::Apps,
    #[serde(default)]
    queue: Option<cmsi_mail_queue::QueueSettings>,
    #[serde(default)]
    tenants: BTreeMap<String, TenantConfig>,
    #[serde(default)]
    channels: cmsi_mail_gateway::Channels,
    /// Whether HTML mail gets its plain-text alternative (default true).
    #[serde(default)]
    text_alternative: Option<bool>,
    #[serde(default)]
    dkim: Option<DkimConfig>,
    /// The signer of `[dkim]`, its key read when the file is loaded.
    #[serde(skip)]
    signer: Option<Arc<DkimSigner>>,
    /// The directory of the file, for relative paths.
    #[serde(skip)]
    base: PathBuf,
}

/// `[tenants.NAME]`: what a request with `X-Bk-Tenant-Id: NAME` sends with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantConfig {
    /// Default sender; else the top-level `mail_sender`.
    #[serde(default)]
    mail_sender: Option<String>,
    /// The tenant's own users (none of the top-level `[users]`).
    #[serde(default)]
    users: Option<StaticDirectory>,
    /// A TOML file with a `[users]` table instead.
    #[serde(default)]
    users_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportConfig {
    #[serde(default)]
    kind: Option<TransportKind>,
    #[serde(default)]
    file: FileConfig,
    #[serde(default)]
    smtp: Option<SmtpSettings>,
    #[serde(default)]
    ses: Option<SesSettings>,
}

/// `[dkim]`: sign every message for `domain` with the key of `selector`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DkimConfig {
    domain: String,
    selector: String,
    /// PEM private key: RSA (2048 to 8192 bits) or Ed25519.
    key_file: PathBuf,
    /// Header fields to sign (default: cmsi_mail::DEFAULT_SIGNED_HEADERS).
    #[serde(default)]
    headers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    dir: Option<PathBuf>,
}

/// Which transport delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportKind {
    /// A directory of .eml files.
    File,
    /// An SMTP server.
    Smtp,
    /// Amazon SES v2.
    Ses,
}

impl Config {
    /// Reads `path`, or gives the defaults when there is none.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let shown = |error: &toml::de::Error, key: Option<String>| {
            anyhow::anyhow!("{}: {}", path.display(), toml_error(&text, error, key))
        };
        let deserializer =
            toml::de::Deserializer::parse(&text).map_err(|error| shown(&error, None))?;
        let mut config: Config =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let key = error.path().to_string();
                shown(error.inner(), Some(key))
            })?;
        config.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // A key that cannot be read stops the start, before anything else.
        config.signer = config.load_dkim()?;
        Ok(config)
    }

    /// `[queue]`, its URL replaced by `CMSI_MAIL_QUEUE_URL` when that is set
    /// (which also stands for a missing table).
    pub(crate) fn queue_settings(&self) -> anyhow::Result<cmsi_mail_queue::QueueSettings> {
        self.configured_queue().with_context(|| {
            format!(
                "no queue is configured: add a [queue] table with url = \"postgres://…\" \
                 to the config (--config FILE), or set {QUEUE_URL_ENV}"
            )
        })
    }

    /// The queue's settings when there is a queue: a `[queue]` table, or
    /// `CMSI_MAIL_QUEUE_URL` (whose url wins over the table's).
    pub(crate) fn configured_queue(&self) -> Option<cmsi_mail_queue::QueueSettings> {
        let from_env = std::env::var(QUEUE_URL_ENV)
            .ok()
            .filter(|url| !url.is_empty());
        match (self.queue.clone(), from_env) {
            (Some(mut settings), Some(url)) => {
                settings.url = url;
                Some(settings)
            }
            (Some(settings), None) => Some(settings),
            (None, Some(url)) => Some(cmsi_mail_queue::QueueSettings::new(url)),
            (None, None) => None,
        }
    }

    /// Replaces the users with those of another file.
    fn load_users(&mut self, path: &Path) -> anyhow::Result<()> {
        self.users = load_users(path)?;
        Ok(())
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// The sender for requests that name none.
    pub(crate) fn sender(&self) -> anyhow::Result<Mailbox> {
        parse_sender(self.mail_sender.as_deref(), "mail_sender")
    }

    /// The top-level mailer over `transport`. Takes the users out of the
    /// config.
    pub(crate) fn mailer(&mut self, transport: Box<dyn Transport>) -> anyhow::Result<Mailer> {
        let mailer = cmsi_mail::Mailer::new(transport, self.sender()?)
            .with_directory(Arc::new(std::mem::take(&mut self.users)));
        self.composing(mailer, self.dkim_signer())
    }

    /// `mailer` composing as the file says: with or without the text part,
    /// signed with `dkim` when there is one.
    fn composing(&self, mailer: Mailer, dkim: Option<Arc<DkimSigner>>) -> anyhow::Result<Mailer> {
        let mailer = mailer.with_compose_options(self.compose_options());
        Ok(match dkim {
            Some(signer) => mailer.with_dkim(signer),
            None => mailer,
        })
    }

    /// A mailer per `[tenants.NAME]` over the one shared transport, after
    /// checking that every `[apps.NAME] tenants` entry names one.
    pub(crate) fn tenant_mailers(
        &mut self,
        shared: &Arc<dyn Transport>,
    ) -> anyhow::Result<Vec<(String, Mailer)>> {
        for (app, settings) in &self.apps {
            for tenant in settings.tenants.iter().flatten() {
                if !self.tenants.contains_key(tenant) {
                    anyhow::bail!("[apps.{app}] tenants: there is no [tenants.{tenant}]");
                }
            }
        }
        let dkim = self.dkim_signer();
        let mut mailers = Vec::new();
        for (name, tenant) in std::mem::take(&mut self.tenants) {
            let sender = match &tenant.mail_sender {
                Some(sender) => {
                    parse_sender(Some(sender), &format!("[tenants.{name}] mail_sender"))?
                }
                None => self.sender()?,
            };
            let users = match (tenant.users, &tenant.users_file) {
                (Some(_), Some(_)) => {
                    anyhow::bail!("[tenants.{name}]: give users or users_file, not both")
                }
                (Some(users), None) => users,
                (None, Some(path)) => load_users(&self.resolve(path))
                    .with_context(|| format!("[tenants.{name}] users_file"))?,
                (None, None) => StaticDirectory::new(),
            };
            let transport: Box<dyn Transport> = Box::new(Arc::clone(shared));
            let mailer = cmsi_mail::Mailer::new(transport, sender).with_directory(Arc::new(users));
            mailers.push((name, self.composing(mailer, dkim.clone())?));
        }
        Ok(mailers)
    }

    /// `[channels]`, each `ca_file` relative to the file.
    pub(crate) fn channels(&self) -> cmsi_mail_gateway::Channels {
        let mut channels = self.channels.clone();
        for channel in channels.values_mut() {
            channel.ca_file = channel.ca_file.as_deref().map(|path| self.resolve(path));
        }
        channels
    }

    /// The transport kind, `kind` overriding the file's choice (default: file).
    fn kind(&self, kind: Option<TransportKind>) -> TransportKind {
        kind.or(self.transport.kind).unwrap_or(TransportKind::File)
    }

    /// The file transport's directory: `outbox`, else the file's, else ./outbox.
    fn file_dir(&self, outbox: Option<&Path>) -> PathBuf {
        match outbox {
            Some(dir) => dir.to_path_buf(),
            None => self.resolve(
                self.transport
                    .file
                    .dir
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_OUTBOX)),
            ),
        }
    }

    /// Whether HTML mail gets its text alternative (unless
    /// `text_alternative = false`).
    pub(crate) fn text_alternative(&self) -> bool {
        self.text_alternative.unwrap_or(true)
    }

    /// How `send` and `serve` compose messages.
    fn compose_options(&self) -> ComposeOptions {
        ComposeOptions::new().with_text_alternative(self.text_alternative())
    }

    /// The users of the `[users]` table, taken out of the configuration.
    pub(crate) fn take_users(&mut self) -> StaticDirectory {
        std::mem::take(&mut self.users)
    }

    /// The DKIM signer of `[dkim]`, if there is one.
    pub(crate) fn dkim_signer(&self) -> Option<Arc<DkimSigner>> {
        self.signer.clone()
    }

    /// Reads `[dkim]`'s key: one that cannot be read or used is an error
    /// naming the file.
    fn load_dkim(&self) -> anyhow::Result<Option<Arc<DkimSigner>>> {
        let Some(dkim) = &self.dkim else {
            return Ok(None);
        };
        let path = self.resolve(&dkim.key_file);
        let pem = std::fs::read(&path)
            .with_context(|| format!("[dkim] key_file {}: cannot read it", path.display()))?;
        let signer =
            DkimSigner::from_pem(&pem, &dkim.domain, &dkim.selector, dkim.headers.as_deref())
                .with_context(|| format!("[dkim] key_file {}", path.display()))?;
        Ok(Some(Arc::new(signer)))
    }

    /// The transport, `kind` overriding the file's choice (default: file).
    async fn transport(
        &self,
        kind: Option<TransportKind>,
        outbox: Option<&Path>,
    ) -> anyhow::Result<Box<dyn Transport>> {
        Ok(match self.kind(kind) {
            TransportKind::File => {
                let dir = self.file_dir(outbox);
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                Box::new(FileTransport::new(dir))
            }
            TransportKind::Smtp => {
                let mut settings = self
                    .transport
                    .smtp
                    .clone()
                    .context("--transport smtp needs a [transport.smtp] table in the config")?;
                if let Ok(user) = std::env::var(SMTP_USER_ENV) {
                    settings.smtp_user = Some(user);
                }
                if let Ok(password) = std::env::var(SMTP_PWD_ENV) {
                    settings.smtp_pwd = Some(password);
                }
                if let Ok(token) = std::env::var(SMTP_TOKEN_ENV) {
                    settings.oauth_token = Some(token);
                }
                if let Ok(secret) = std::env::var(OAUTH_SECRET_ENV) {
                    settings.oauth_client_secret = Some(secret);
                }
                settings.ca_file = settings.ca_file.map(|path| self.resolve(&path));
                Box::new(SmtpTransport::new(settings)?)
            }
            TransportKind::Ses => {
                let settings = self.transport.ses.clone().unwrap_or_default();
                Box::new(SesTransport::from_settings(&settings).await?)
            }
        })
    }
}

/// A TOML error by line, column and key, without the line itself: the line
/// may hold a password (`[queue] url`, `[smtp] password`).
fn toml_error(text: &str, error: &toml::de::Error, key: Option<String>) -> String {
    let message = without_value(error.message().trim_end());
    let key = key
        .filter(|key| !key.is_empty() && key != ".")
        .map(|key| format!("{key}: "))
        .unwrap_or_default();
    let Some(span) = error.span() else {
        return format!("{key}{message}");
    };
    let before = text.as_bytes().get(..span.start).unwrap_or(text.as_bytes());
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}: {key}{message}")
}

/// serde's "invalid type: integer `12345678`, expected a string" without the
/// value, which may be an unquoted password.
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((what, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected"))
        {
            let kind = what.split(' ').next().unwrap_or_default();
            return format!("{prefix}{kind}, expected{expected}");
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_error_names_the_place_not_the_line() {
        let text = "[server]\n\n[queue]\nurl = postgres://mail:s3cret@db/x\n";
        let error = toml::from_str::<Config>(text).unwrap_err();
        // toml's own message quotes the line, password and all.
        assert!(error.to_string().contains("s3cret"), "{error}");
        let shown = toml_error(text, &error, None);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.starts_with("line 4, column "), "{shown}");

        // A value of the wrong type is not quoted either.
        let text = "[transport.smtp]\nsmtp_pwd = 12345678\n";
        let error = toml::from_str::<Config>(text).unwrap_err();
        let shown = toml_error(text, &error, Some("transport.smtp.smtp_pwd".into()));
        assert!(!shown.contains("12345678"), "{shown}");
        assert!(
            shown.ends_with("transport.smtp.smtp_pwd: invalid type: integer, expected a string"),
            "{shown}"
        );
    }
}
