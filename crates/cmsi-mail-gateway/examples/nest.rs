//! The ESB endpoint inside another axum application: the gateway's router is
//! nested beside the application's own routes, and served by the application.
//! The example serves on a free port, sends itself one request, and stops.
//!
//! ```sh
//! cargo run -p cmsi-mail-gateway --example nest
//! ```

// An example shows its result on standard output.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use cmsi_mail::{Mailbox, Mailer, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_gateway::{AppConfig, AppRegistry, Apps, Gateway, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let outbox = tempfile::tempdir()?;
    let transport: Box<dyn Transport> = Box::new(FileTransport::new(outbox.path()));
    let mailer = Mailer::new(transport, Mailbox::parse("noreply@example.com")?);
    let mut apps = Apps::new();
    apps.insert(
        "monitor".into(),
        AppConfig {
            secret: Some("s3cret".into()),
            allow_bk_username: true,
            ..AppConfig::default()
        },
    );
    let apps = AppRegistry::new(&apps, |name| std::env::var(name).ok())?;
    let gateway = Arc::new(Gateway::new(mailer, apps, &ServerConfig::default())?);

    // The application's own routes, and the ESB API under /mail.
    let app = Router::new()
        .route("/", get(|| async { "my application" }))
        .nest("/mail", gateway.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    // The application's server: it must set its own connection bounds (header
    // timeout, connection count); the router bounds the bodies itself.
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let body = serde_json::json!({
        "bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
        "receiver": "zhangsan@example.com", "title": "嵌套", "content": "<p>hi</p>",
    });
    let reply = reqwest::Client::new()
        .post(format!("{url}/mail/api/c/compapi/cmsi/send_mail/"))
        .json(&body)
        .send()
        .await?
        .json::<cmsi_mail::EsbResponse>()
        .await?;
    println!("{}", serde_json::to_string(&reply)?);
    server.abort();
    if !reply.result {
        return Err(format!("not sent: {}", reply.message).into());
    }
    Ok(())
}
