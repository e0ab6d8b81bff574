#![doc = include_str!("../README.md")]

mod ready;

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::Region;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use cmsi_mail::{
    Composed, Envelope, Receipt, RetryPolicy, Transport, TransportError, TransportErrorKind,
};
use serde::Deserialize;

/// Largest raw message SES v2 accepts: 40 MB, headers and encoded
/// attachments included.
pub const MAX_RAW_MESSAGE_BYTES: usize = 40_000_000;

/// Overrides of the standard AWS configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesSettings {
    /// AWS region (else `AWS_REGION`, the profile, ...).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL, for a VPC endpoint or a local test server.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// SES configuration set to send with.
    #[serde(default)]
    pub configuration_set: Option<String>,
    /// Attempts per message, the first included (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Seconds one attempt may take (default 30).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
}

/// Most recipients SES takes for one message.
pub const MAX_RECIPIENTS: usize = 50;

/// Delivers through SES v2.
#[derive(Debug, Clone)]
pub struct SesTransport {
    client: Client,
    configuration_set: Option<String>,
    retry: RetryPolicy,
}

impl SesTransport {
    /// A transport using `client` as it is configured, except for retries.
    ///
    /// `SendEmail` is not idempotent: the SDK's own retries would send again
    /// after a timeout or a lost connection, when SES may already have taken
    /// the message. So they are turned off, and this transport retries only
    /// answers that say SES did not take it: throttling and 5xx.
    pub fn new(client: Client) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        SesTransport {
            client: Client::from_conf(config),
            configuration_set: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Attempts per message, the first included (default 3).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.retry = self.retry.with_max_attempts(attempts);
        self
    }

    /// The first retry delay (default 500 ms; it doubles per attempt).
    #[must_use]
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.retry = self.retry.with_first_delay(first);
        self
    }

    /// Sends with an SES configuration set.
    #[must_use]
    pub fn with_configuration_set(mut self, name: impl Into<String>) -> Self {
        self.configuration_set = Some(name.into());
        self
    }

    /// Builds the client from the standard AWS configuration (credentials,
    /// region, endpoint) with `settings` on top.
    pub async fn from_settings(settings: &SesSettings) -> Result<Self, TransportError> {
        let configuration =
            |message: String| TransportError::new(TransportErrorKind::Configuration, message);
        let timeout = Duration::try_from_secs_f64(settings.timeout_secs.unwrap_or(30.0))
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                configuration("timeout_secs must be a positive number of seconds".into())
            })?;
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(configuration(
                "no AWS region: set region in [transport.ses] or AWS_REGION".into(),
            ));
        }
        let config = aws_sdk_sesv2::config::Builder::from(&shared)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(timeout)
                    .build(),
            )
            .build();
        let mut transport = SesTransport::new(Client::from_conf(config))
            .with_max_attempts(settings.max_attempts.unwrap_or(3));
        transport.configuration_set = settings.configuration_set.clone();
        Ok(transport)
    }
}

/// The HTTP client this crate builds clients with: hyper with rustls on ring.
/// Pass it to `aws_sdk_sesv2::Config::builder().http_client(…)` when building
/// a client yourself: the SDK is compiled without a default one.
pub fn https_client() -> aws_sdk_sesv2::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[async_trait]
impl Transport for SesTransport {
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        if message.bytes.len() > MAX_RAW_MESSAGE_BYTES {
            return Err(TransportError::new(
                TransportErrorKind::Permanent,
                format!(
                    "the message is {} bytes; SES accepts raw messages of at most {} bytes",
                    message.bytes.len(),
                    MAX_RAW_MESSAGE_BYTES
                ),
            ));
        }
        if envelope.recipients().len() > MAX_RECIPIENTS {
            return Err(TransportError::new(
                TransportErrorKind::Permanent,
                format!(
                    "{} recipients; SES accepts at most {MAX_RECIPIENTS} per message",
                    envelope.recipients().len()
                ),
            ));
        }
        let raw = RawMessage::builder()
            .data(Blob::new(message.bytes.clone()))
            .build()
            .map_err(|error| {
                TransportError::new(TransportErrorKind::Configuration, error.to_string())
            })?;
        let content = EmailContent::builder().raw(raw).build();
        let destination = Destination::builder()
            .set_to_addresses(Some(envelope.recipients().to_vec()))
            .build();
        let mut attempt = 1;
        let output = loop {
            let sent = self
                .client
                .send_email()
                .from_email_address(envelope.sender())
                .destination(destination.clone())
                .content(content.clone())
                .set_configuration_set_name(self.configuration_set.clone())
                .send()
                .await;
            match sent {
                Ok(output) => break output,
                Err(error) if not_taken(&error) && self.retry.delay_after(attempt).is_some() => {
                    let delay = self.retry.delay_after(attempt).unwrap_or_default();
                    tracing::info!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "SES did not take the message; trying again"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(send_error(error, attempt)),
            }
        };
        Ok(Receipt {
            message_id: message.message_id.clone(),
            accepted: envelope.recipients().to_vec(),
            rejected: Vec::new(),
            transport_id: output.message_id().map(str::to_owned),
        })
    }

    /// Ready when SES answers a read (an identity list of one); nothing is
    /// sent, and the check is not retried.
    async fn ready(&self) -> Result<(), TransportError> {
        self.reach().await
    }
}

/// Whether SES answered that it did not take the message and may later:
/// throttling or a 5xx.
fn not_taken(error: &SdkError<SendEmailError>) -> bool {
    match error {
        SdkError::ServiceError(service) => {
            matches!(service.err(), SendEmailError::TooManyRequestsException(_))
                || service.raw().status().is_server_error()
        }
        _ => false,
    }
}

fn send_error(error: SdkError<SendEmailError>, attempts: u32) -> TransportError {
    let (kind, message) = match &error {
        SdkError::ServiceError(service) => {
            let kind = match service.err() {
                SendEmailError::TooManyRequestsException(_)
                | SendEmailError::LimitExceededException(_) => TransportErrorKind::Transient,
                SendEmailError::NotFoundException(_) => TransportErrorKind::Configuration,
                SendEmailError::MessageRejected(_)
                | SendEmailError::MailFromDomainNotVerifiedException(_)
                | SendEmailError::AccountSuspendedException(_)
                | SendEmailError::SendingPausedException(_)
                | SendEmailError::BadRequestException(_) => TransportErrorKind::Permanent,
                _ if service.raw().status().is_server_error() => TransportErrorKind::Transient,
                _ => TransportErrorKind::Permanent,
            };
            let code = service.err().code().unwrap_or("error");
            let text = service.err().message().unwrap_or("no message");
            (kind, format!("SES refused the message: {code}: {text}"))
        }
        SdkError::ConstructionFailure(_) => (
            TransportErrorKind::Configuration,
            format!("SES request could not be built: {}", DisplayChain(&error)),
        ),
        // No identity (credentials) to sign with is reported as a dispatch
        // failure that is neither I/O nor a timeout.
        SdkError::DispatchFailure(failure) if !(failure.is_io() || failure.is_timeout()) => (
            TransportErrorKind::Configuration,
            format!("SES request could not be sent: {}", DisplayChain(&error)),
        ),
        // Not retried: the request may have reached SES.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            TransportErrorKind::Transient,
            format!("SES could not be reached: {}", DisplayChain(&error)),
        ),
        _ => (
            TransportErrorKind::Transient,
            format!("SES call failed: {}", DisplayChain(&error)),
        ),
    };
    let message = if attempts > 1 {
        format!("{message} (after {attempts} attempts)")
    } else {
        message
    };
    TransportError::new(kind, message).with_source(error)
}

/// An error and its causes on one line (the SDK's own Display says little).
struct DisplayChain<'e>(&'e (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(current) = cause {
            write!(f, ": {current}")?;
            cause = current.source();
        }
        Ok(())
    }
}
