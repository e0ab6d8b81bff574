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
//! [transport.ses]
//! region = "us-east-1"
//! [users]
//! admin = "admin@example.com"
//! [server]
//! listen = "127.0.0.1:8025"
//! max_body_bytes = 33554432
//! outbox_ui = true             # the outbox viewer at /outbox/ (file transport)
//! [apps.monitor]
//! secret = "s3cret"          # or: secret_env = "MONITOR_SECRET"
//! allow_bk_username = true
//! ```
//!
//! Relative paths (`dir`, `ca_file`) are relative to the file's own directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cmsi_mail::{Mailbox, StaticDirectory, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_ses::{SesSettings, SesTransport};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use serde::Deserialize;

use crate::PLACEHOLDER_SENDER;

/// Environment variables that override secrets of the file.
const SMTP_USER_ENV: &str = "CMSI_MAIL_SMTP_USER";
const SMTP_PWD_ENV: &str = "CMSI_MAIL_SMTP_PWD";

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
        let transport = config
            .transport(self.transport_kind(), self.outbox.as_deref())
            .await?;
        Ok(cmsi_mail::Mailer::new(transport, config.sender()?)
            .with_directory(std::sync::Arc::new(std::mem::take(&mut config.users))))
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
    fn sender(&self) -> anyhow::Result<Mailbox> {
        parse_sender(self.mail_sender.as_deref(), "mail_sender")
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
