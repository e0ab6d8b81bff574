//! The SMTP envelope: MAIL FROM and RCPT TO, beside the mailboxes it is built
//! from (as lettre keeps `address/envelope.rs` beside its `Mailbox`).

use serde::Serialize;

use super::Mailbox;

/// The SMTP envelope: who the message is from (MAIL FROM) and who gets it
/// (RCPT TO). It is built from validated mailboxes and never has zero
/// recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    sender: String,
    recipients: Vec<String>,
}

impl Envelope {
    /// The envelope of a validated message, whose recipients are already free
    /// of duplicates and never empty (a message always has a To address).
    pub(crate) fn of_message<'m>(
        sender: &Mailbox,
        recipients: impl IntoIterator<Item = &'m Mailbox>,
    ) -> Envelope {
        Envelope {
            sender: sender.address().to_owned(),
            recipients: recipients
                .into_iter()
                .map(|mailbox| mailbox.address().to_owned())
                .collect(),
        }
    }

    /// An envelope from `sender` to `recipients` (duplicates, compared without
    /// regard to case, are dropped), or `None` when there is no recipient.
    pub fn try_new<'m>(
        sender: &Mailbox,
        recipients: impl IntoIterator<Item = &'m Mailbox>,
    ) -> Option<Envelope> {
        let mut seen = std::collections::HashSet::new();
        let recipients: Vec<String> = recipients
            .into_iter()
            .filter(|mailbox| seen.insert(mailbox.dedupe_key()))
            .map(|mailbox| mailbox.address().to_owned())
            .collect();
        (!recipients.is_empty()).then(|| Envelope {
            sender: sender.address().to_owned(),
            recipients,
        })
    }

    /// The same envelope for only the recipients `keep` selects, or `None` when
    /// it selects none (for a transport that tries some recipients again).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) -> Option<Envelope> {
        let recipients: Vec<String> = self
            .recipients
            .iter()
            .filter(|recipient| keep(recipient))
            .cloned()
            .collect();
        (!recipients.is_empty()).then(|| Envelope {
            sender: self.sender.clone(),
            recipients,
        })
    }

    /// MAIL FROM.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// RCPT TO, in order, without duplicates; never empty.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }
}
