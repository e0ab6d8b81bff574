//! The whole path in one value: a `Mailer` over the file-drop transport takes
//! a `send_mail` request and answers as the ESB does.
//!
//! ```sh
//! cargo run -p cmsi-mail-file --example mailer            # into a temporary directory
//! cargo run -p cmsi-mail-file --example mailer -- outbox  # into ./outbox
//! ```

// An example shows its result on standard output.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use cmsi_mail::{Mailbox, Mailer, SendMailRequest, StaticDirectory};
use cmsi_mail_file::FileTransport;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let temporary = tempfile::tempdir()?;
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => temporary.path().to_path_buf(),
    };
    std::fs::create_dir_all(&dir)?;

    let mut users = StaticDirectory::new();
    users.insert("zhangsan", Mailbox::parse("张三 <zhangsan@example.com>")?);
    let mailer = Mailer::new(
        FileTransport::new(&dir),
        Mailbox::parse("noreply@example.com")?,
    )
    .with_directory(Arc::new(users));

    let json = r#"{"receiver__username": "zhangsan,ghost", "title": "周报",
                   "content": "<p>本周无告警。</p>"}"#;
    let request = SendMailRequest::from_json(json.as_bytes())?;
    // Validate and compose, then deliver; the response is the ESB envelope,
    // `username_check` included, whether or not the delivery worked.
    let response = mailer.respond(request).await;
    println!("{}", serde_json::to_string_pretty(&response)?);
    for entry in std::fs::read_dir(&dir)? {
        eprintln!("wrote {}", entry?.path().display());
    }
    if !response.result {
        return Err(format!("not sent: {}", response.message).into());
    }
    Ok(())
}
