//! Embed the composer: read a `send_mail` request, validate it, and write the
//! message to standard output.
//!
//! ```sh
//! cargo run -p cmsi-mail --example compose                  # examples/send_mail.json
//! cargo run -p cmsi-mail --example compose -- request.json
//! ```

use std::error::Error;
use std::io::Write as _;

use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/send_mail.json").to_owned()
    });
    let json = std::fs::read(&path)?;

    // 1. Read: large strings (attachments) borrow from `json`.
    let request = SendMailRequest::from_json(&json)?;
    // 2. Validate: every rule checked, usernames resolved through a directory.
    let mut directory = StaticDirectory::new();
    directory.insert("admin", Mailbox::parse("Admin <admin@example.com>")?);
    let sender = Mailbox::parse("CMSI <noreply@example.com>")?;
    let validated = Validator::new(sender, &directory).validate(request)?;
    if !validated.username_check.invalid.is_empty() {
        eprintln!("unknown usernames: {:?}", validated.username_check.invalid);
    }
    // 3. Compose, streaming into any `io::Write`.
    let envelope = validated.message.envelope();
    eprintln!(
        "MAIL FROM {} RCPT TO {:?}",
        envelope.sender(),
        envelope.recipients()
    );
    let mut out = std::io::stdout().lock();
    let message_id = validated
        .message
        .write_to(&ComposeOptions::new(), &mut out)?;
    out.flush()?;
    eprintln!("Message-ID <{message_id}>");
    Ok(())
}
