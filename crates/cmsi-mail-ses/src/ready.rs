//! Readiness: whether SES can be reached with these credentials, asked with
//! a read that sends nothing.

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::list_email_identities::ListEmailIdentitiesError;
use cmsi_mail::{TransportError, TransportErrorKind};

use crate::{DisplayChain, SesTransport};

impl SesTransport {
    /// Lists at most one email identity: SES answering at all, even with
    /// "access denied" (a send-only policy may not list), shows the endpoint
    /// is reached and the request's signature accepted.
    pub(crate) async fn reach(&self) -> Result<(), TransportError> {
        let answer = self
            .client
            .list_email_identities()
            .page_size(1)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service))
                if service
                    .err()
                    .code()
                    .is_some_and(|code| code.starts_with("AccessDenied")) =>
            {
                Ok(())
            }
            Err(error) => Err(unready(&error)),
        }
    }
}

fn unready(error: &SdkError<ListEmailIdentitiesError>) -> TransportError {
    let (kind, message) = match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("error");
            let text = service.err().message().unwrap_or("no message");
            // Throttling or a 5xx passes; anything else is the credentials,
            // the region or the endpoint.
            let kind = if code.starts_with("TooManyRequests") || code.starts_with("Throttling") {
                TransportErrorKind::Transient
            } else {
                TransportErrorKind::Configuration
            };
            (kind, format!("SES refused the check: {code}: {text}"))
        }
        SdkError::DispatchFailure(failure) if !(failure.is_io() || failure.is_timeout()) => (
            TransportErrorKind::Configuration,
            format!("SES request could not be sent: {}", DisplayChain(error)),
        ),
        SdkError::ConstructionFailure(_) => (
            TransportErrorKind::Configuration,
            format!("SES request could not be built: {}", DisplayChain(error)),
        ),
        _ => (
            TransportErrorKind::Transient,
            format!("SES could not be reached: {}", DisplayChain(error)),
        ),
    };
    TransportError::new(kind, message)
}
