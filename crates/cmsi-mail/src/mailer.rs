//! The whole path in one call: request → validated message → bytes → transport,
//! and the ESB response for the outcome.

use std::sync::Arc;

use crate::address::{Envelope, Mailbox};
use crate::compose::{ComposeOptions, Composed};
use crate::directory::{StaticDirectory, UserDirectory};
use crate::esb::{Error, EsbResponse};
use crate::request::SendMailRequest;
use crate::transport::{Receipt, Transport};
use crate::validate::{Limits, UsernameCheck, Validator};

/// Validates, composes and sends `send_mail` requests through one transport.
pub struct Mailer<T> {
    transport: T,
    sender: Mailbox,
    directory: Arc<dyn UserDirectory>,
    limits: Limits,
    compose: ComposeOptions,
    #[cfg(feature = "dkim")]
    dkim: Option<Arc<crate::dkim::DkimSigner>>,
}

/// The transport is not shown (a `dyn Transport` need not be `Debug`).
impl<T> std::fmt::Debug for Mailer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("sender", &self.sender)
            .field("limits", &self.limits)
            .field("compose", &self.compose)
            .field("dkim", &self.dkim_debug())
            .finish_non_exhaustive()
    }
}

/// A delivered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// What the transport reported.
    pub receipt: Receipt,
    /// Usernames that did not resolve (the mail went to the others).
    pub username_check: UsernameCheck,
}

impl<T: Transport> Mailer<T> {
    /// A mailer that sends through `transport`, from `default_sender` when a
    /// request names no sender, with no user directory (every username unknown).
    pub fn new(transport: T, default_sender: Mailbox) -> Self {
        Mailer {
            transport,
            sender: default_sender,
            directory: Arc::new(StaticDirectory::new()),
            limits: Limits::default(),
            compose: ComposeOptions::new(),
            #[cfg(feature = "dkim")]
            dkim: None,
        }
    }

    /// Resolves `receiver__username` and `cc__username` through `directory`.
    #[must_use]
    pub fn with_directory(mut self, directory: Arc<dyn UserDirectory>) -> Self {
        self.directory = directory;
        self
    }

    /// Replaces the request limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Stamps every message with these options (a fixed seed and date make
    /// output reproducible in tests).
    #[must_use]
    pub fn with_compose_options(mut self, options: ComposeOptions) -> Self {
        self.compose = options;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Validates, composes and sends one request. Nothing is sent unless the
    /// whole request is valid.
    pub async fn send(&self, request: SendMailRequest<'_>) -> Result<Sent, Error> {
        let prepared = self.prepare(request)?;
        self.deliver(&prepared).await
    }

    /// Sends one request and answers as the ESB does; the usernames that did
    /// not resolve are reported whether or not delivery succeeded.
    pub async fn respond(&self, request: SendMailRequest<'_>) -> EsbResponse {
        match self.prepare(request) {
            Ok(prepared) => prepared.response(&self.deliver(&prepared).await),
            Err(error) => EsbResponse::error(&error),
        }
    }

    /// Hands a prepared message to the transport.
    pub async fn deliver(&self, prepared: &Prepared) -> Result<Sent, Error> {
        let receipt = self
            .transport
            .send(&prepared.envelope, &prepared.composed)
            .await?;
        Ok(Sent {
            receipt,
            username_check: prepared.username_check.clone(),
        })
    }
}

impl<T> Mailer<T> {
    /// Validates and composes one request, without sending it: the CPU-bound
    /// half of [`Mailer::send`], for a caller that runs it off its async
    /// threads or hands the result to a queue. The validated message (with any
    /// decoded attachment) is dropped here; only the composed bytes are kept,
    /// DKIM-signed when the mailer has a signer: every transport, and every
    /// queue, gets the signed bytes.
    pub fn prepare(&self, request: SendMailRequest<'_>) -> Result<Prepared, Error> {
        let validated = Validator::new(self.sender.clone(), self.directory.as_ref())
            .with_limits(self.limits)
            .validate(request)?;
        let composed = validated.message.compose(&self.compose);
        #[cfg(feature = "dkim")]
        let composed = match &self.dkim {
            Some(signer) => signer
                .sign(composed)
                .map_err(|error| Error::Signing(error.to_string()))?,
            None => composed,
        };
        Ok(Prepared {
            composed,
            envelope: validated.message.envelope(),
            username_check: validated.username_check,
        })
    }

    /// Signs every message it prepares with `signer` (feature `dkim`).
    #[cfg(feature = "dkim")]
    #[must_use]
    pub fn with_dkim(mut self, signer: Arc<crate::dkim::DkimSigner>) -> Self {
        self.dkim = Some(signer);
        self
    }

    #[cfg(feature = "dkim")]
    fn dkim_debug(&self) -> Option<&crate::dkim::DkimSigner> {
        self.dkim.as_deref()
    }

    #[cfg(not(feature = "dkim"))]
    fn dkim_debug(&self) -> Option<()> {
        None
    }
}

/// A request validated and composed: what a transport (or a queue) takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Who the message goes to.
    pub envelope: Envelope,
    /// The message.
    pub composed: Composed,
    /// Usernames that did not resolve.
    pub username_check: UsernameCheck,
}

impl Prepared {
    /// The ESB response for delivering this message with `result`: the
    /// usernames that did not resolve are reported whether or not it was sent.
    pub fn response(&self, result: &Result<Sent, Error>) -> EsbResponse {
        EsbResponse::from_result(result).with_username_check(&self.username_check)
    }
}
