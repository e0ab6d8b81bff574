//! One SMTP transaction: MAIL FROM, RCPT TO for each recipient, DATA, and
//! what the server's replies mean for the receipt and for trying again.

use std::sync::atomic::{AtomicBool, Ordering};

use cmsi_mail::{Composed, Envelope, Receipt, Rejection, TransportErrorKind};
use lettre::transport::smtp::client::AsyncSmtpConnection;

use crate::SmtpTransport;
use crate::failure::{Failure, is_reply};

impl SmtpTransport {
    pub(crate) async fn attempt(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, Failure> {
        let mut connection = self.checkout().await?;
        match self.transaction(&mut connection, envelope, message).await {
            Ok(receipt) => {
                self.checkin(connection);
                Ok(receipt)
            }
            Err(failure) => {
                let reset = failure.reusable
                    && self
                        .step("RSET", self.timeout, connection.command("RSET\r\n"))
                        .await
                        .is_ok();
                if reset {
                    self.checkin(connection);
                } else {
                    connection.abort().await;
                }
                Err(failure)
            }
        }
    }

    async fn transaction(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, Failure> {
        // Addresses were validated by cmsi-mail: no line breaks, no spaces
        // outside a quoted local part.
        let mail = format!("MAIL FROM:<{}>\r\n", envelope.sender());
        self.step("MAIL FROM", self.timeout, connection.command(mail))
            .await?;

        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        let mut only_transient = true;
        for recipient in envelope.recipients() {
            let rcpt = format!("RCPT TO:<{recipient}>\r\n");
            match tokio::time::timeout(self.timeout, connection.command(rcpt)).await {
                Ok(Ok(_)) => accepted.push(recipient.clone()),
                Ok(Err(error)) if is_reply(&error) => {
                    only_transient &= error.is_transient();
                    rejected.push(Rejection {
                        recipient: recipient.clone(),
                        reason: error.to_string(),
                        temporary: error.is_transient(),
                    });
                }
                Ok(Err(error)) => return Err(Failure::smtp("RCPT TO", error)),
                Err(_) => return Err(Failure::timeout("RCPT TO", self.timeout)),
            }
        }
        if accepted.is_empty() {
            let reasons: Vec<String> = rejected
                .iter()
                .map(|r| format!("{}: {}", r.recipient, r.reason))
                .collect();
            let kind = if only_transient {
                TransportErrorKind::Transient
            } else {
                TransportErrorKind::Permanent
            };
            let mut failure = Failure::new(
                kind,
                format!("every recipient was refused: {}", reasons.join("; ")),
            );
            failure.reusable = true;
            return Err(failure);
        }

        self.step("DATA", self.timeout, connection.command("DATA\r\n"))
            .await?;

        // Whether every byte of the message was handed to the connection: a
        // failure before that leaves the server without a complete message
        // (safe to retry); a failure after it may follow a delivery.
        let sent_all = AtomicBool::new(false);
        let pieces = Pieces {
            rest: &message.bytes,
            done: &sent_all,
        };
        // Slow links get time in proportion to the size.
        let per_mib = u32::try_from(message.bytes.len() >> 20).unwrap_or(u32::MAX);
        let limit = self.timeout.saturating_mul(per_mib.saturating_add(1));
        match tokio::time::timeout(limit, connection.message_iter(pieces)).await {
            Ok(Ok(response)) => Ok(Receipt {
                message_id: message.message_id.clone(),
                accepted,
                rejected,
                transport_id: Some(
                    std::iter::once(response.code().to_string())
                        .chain(response.message().map(str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            }),
            Ok(Err(error)) if is_reply(&error) => Err(Failure::smtp("end of DATA", error)),
            Ok(Err(error)) if !sent_all.load(Ordering::Relaxed) => {
                Err(Failure::smtp("sending DATA", error))
            }
            // Out of time before the last byte was handed over: the server has
            // no complete message, so trying again is safe.
            Err(_) if !sent_all.load(Ordering::Relaxed) => {
                Err(Failure::timeout("sending DATA", limit))
            }
            outcome => {
                let cause = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {:.1} s", limit.as_secs_f64()),
                };
                Err(Failure::new(
                    TransportErrorKind::Transient,
                    format!(
                        "the connection failed after the whole message was sent ({cause}); \
                         the server may have accepted it, so it is not sent again"
                    ),
                )
                .no_retry())
            }
        }
    }
}

/// The message in pieces for lettre's `message_iter`, noting when the last
/// piece has been taken (lettre writes each piece before asking for the next).
struct Pieces<'m> {
    rest: &'m [u8],
    done: &'m AtomicBool,
}

impl<'m> Iterator for Pieces<'m> {
    type Item = &'m [u8];

    fn next(&mut self) -> Option<&'m [u8]> {
        if self.rest.is_empty() {
            self.done.store(true, Ordering::Relaxed);
            return None;
        }
        let (piece, rest) = self.rest.split_at(self.rest.len().min(256 * 1024));
        self.rest = rest;
        Some(piece)
    }
}
