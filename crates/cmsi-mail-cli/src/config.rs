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
//! [apps.monitor]
//! secret = "s3cret"          # or: secret_env = "MONITOR_SECRET"
//! allow_bk_username = true
//! ```
//!
//! `text_alternative = false` (top level) sends HTML mail without its
//! plain-text part. Relative paths (`dir`, `ca_file`, `key_file`) are relative
//! to the file's own directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use std::sync::Arc;

use cmsi_mail::{ComposeOptions, DkimSigner, Mailbox, StaticDirectory, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_ses::{SesSettings, SesTransport};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use serde::Deserialize;

use crate::PLACEHOLDER_SENDER;

/// Environment variables that override secrets of the file.
const SMTP_USER_ENV: &str = "CMSI_MAIL_SMTP_USER";
const SMTP_PWD_ENV: &str = "CMSI_MAIL_SMTP_PWD";
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
        let kind = self
            .transport
            .or(self.outbox.as_ref().map(|_| TransportKind::File));
        // The key first: a key that cannot be read stops the start.
        let dkim = config.dkim_signer()?;
        let transport = config.transport(kind, self.outbox.as_deref()).await?;
        let mut mailer = cmsi_mail::Mailer::new(transport, config.sender()?)
            .with_directory(Arc::new(std::mem::take(&mut config.users)))
            .with_compose_options(config.compose_options());
        if let Some(signer) = dkim {
            mailer = mailer.with_dkim(signer);
        }
        Ok(mailer)
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
    /// Whether HTML mail gets its plain-text alternative (default true).
    #[serde(default)]
    text_alternative: Option<bool>,
    #[serde(default)]
    dkim: Option<DkimConfig>,
    /// The directory of the file, for relative paths.
    #[serde(skip)]
    base: PathBuf,
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
        let mut config: Config =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        config.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
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

    /// The DKIM signer of `[dkim]`, its key read now: a key that cannot be
    /// read or used is an error at start, naming the file.
    pub(crate) fn dkim_signer(&self) -> anyhow::Result<Option<Arc<DkimSigner>>> {
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
        let kind = kind.or(self.transport.kind).unwrap_or(TransportKind::File);
        Ok(match kind {
            TransportKind::File => {
                let dir = match outbox {
                    Some(dir) => dir.to_path_buf(),
                    None => self.resolve(
                        self.transport
                            .file
                            .dir
                            .as_deref()
                            .unwrap_or(Path::new(DEFAULT_OUTBOX)),
                    ),
                };
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
