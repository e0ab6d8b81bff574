//! DKIM signatures (feature `dkim`, which the test kit turns on) checked by
//! two verifiers we did not write: Python's dkimpy and mail-auth's own. The
//! delivery paths (SMTP bytes as received, the file transport) are tested in
//! the CLI's `tests/dkim.rs`.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::sync::Arc;

use cmsi_mail::{
    ComposeOptions, Composed, DkimError, DkimSigner, Envelope, Mailbox, Mailer, Receipt,
    SendMailRequest, Transport, TransportError,
};
use cmsi_mail_testkit::dkim::{DkimKey, dkimpy_verify, ed25519_key, mail_auth_verify, rsa_key};
use cmsi_mail_testkit::{example, message};
use serde_json::{Value, json};

const DOMAIN: &str = "example.com";
const SELECTOR: &str = "mail2026";

fn signer(key: &DkimKey) -> DkimSigner {
    let pem = std::fs::read(&key.pem).unwrap();
    DkimSigner::from_pem(&pem, DOMAIN, SELECTOR, None).unwrap()
}

/// W1-like: Chinese HTML, a CJK subject, 3 To and 2 Cc, no files.
fn w1() -> Value {
    json!({
        "receiver": "张三 <zs@example.com>, 李四 <ls@example.com>, ww@example.com",
        "cc": "\"运维, 值班\" <oncall@example.com>; qa@example.com",
        "title": "【蓝鲸监控】生产环境告警：CPU 使用率持续超过 90%",
        "content": format!("<h1>告警</h1>{}", "<p>主机 web-01 的 CPU 使用率在过去五分钟内持续超过阈值。</p>\n".repeat(30)),
    })
}

/// Changes one byte of the body (a letter of its last line).
fn tamper(message: &[u8]) -> Vec<u8> {
    let mut changed = message.to_vec();
    let at = changed
        .iter()
        .rposition(|b| b.is_ascii_alphanumeric())
        .unwrap();
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    changed
}

#[test]
fn signatures_verify_in_dkimpy_and_mail_auth() {
    for (name, key) in [("rsa", rsa_key()), ("ed25519", ed25519_key())] {
        let signer = signer(key);
        assert_eq!(signer.algorithm(), format!("{name}-sha256"));
        for request in [w1(), example("send_mail.json"), example("seed.json")] {
            let composed = message(request).compose(&ComposeOptions::new());
            let signed = signer.sign(composed.clone()).unwrap();
            assert!(signed.bytes.starts_with(b"DKIM-Signature: v=1; a="));
            assert!(signed.bytes.ends_with(&composed.bytes));
            cmsi_mail_testkit::oracle::assert_wire_format(&signed.bytes);
            let header =
                String::from_utf8_lossy(&signed.bytes[..signed.bytes.len() - composed.bytes.len()])
                    .into_owned();
            assert!(header.contains("c=relaxed/relaxed"), "{header}");
            assert!(header.contains(&format!("d={DOMAIN}")), "{header}");
            assert!(header.contains(&format!("s={SELECTOR}")), "{header}");

            let (ok, error) = dkimpy_verify(&signed.bytes, &key.record);
            assert!(ok, "dkimpy, {name}: {error:?}");
            assert!(
                mail_auth_verify(&signed.bytes, DOMAIN, SELECTOR, &key.record),
                "mail-auth, {name}"
            );

            let changed = tamper(&signed.bytes);
            let (ok, _) = dkimpy_verify(&changed, &key.record);
            assert!(!ok, "dkimpy accepted a changed body, {name}");
            assert!(
                !mail_auth_verify(&changed, DOMAIN, SELECTOR, &key.record),
                "mail-auth accepted a changed body, {name}"
            );
        }
    }
}

/// `prepare` never reaches the transport.
struct Unused;

#[async_trait::async_trait]
impl Transport for Unused {
    async fn send(&self, _: &Envelope, _: &Composed) -> Result<Receipt, TransportError> {
        unreachable!("prepare does not send")
    }
}

#[test]
fn the_mailer_signs_what_it_prepares() {
    let key = ed25519_key();
    let mailer = Mailer::new(Unused, Mailbox::parse("noreply@example.com").unwrap())
        .with_dkim(Arc::new(signer(key)));
    let request = SendMailRequest::from_value(w1()).unwrap();
    let prepared = mailer.prepare(request).unwrap();
    assert!(prepared.composed.bytes.starts_with(b"DKIM-Signature: "));
    assert!(dkimpy_verify(&prepared.composed.bytes, &key.record).0);
}

#[test]
fn bad_keys_and_settings_are_refused() {
    let rsa = std::fs::read(&rsa_key().pem).unwrap();
    type Case<'a> = (&'a [u8], &'a str, &'a str, Option<Vec<String>>);
    let cases: [Case<'_>; 5] = [
        (b"not a key", DOMAIN, SELECTOR, None),
        (&rsa, "exa mple.com", SELECTOR, None),
        (&rsa, DOMAIN, "sel;x", None),
        (&rsa, DOMAIN, SELECTOR, Some(vec!["Subject".into()])),
        (&rsa, DOMAIN, SELECTOR, Some(vec!["From:".into()])),
    ];
    for (pem, domain, selector, headers) in cases {
        let result = DkimSigner::from_pem(pem, domain, selector, headers.as_deref());
        assert!(
            matches!(result, Err(DkimError::Key(_) | DkimError::Setting(_))),
            "{domain} {selector} {headers:?}"
        );
    }
    // An EC key is a PEM private key, but no DKIM algorithm.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ec.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let error =
        DkimSigner::from_pem(&std::fs::read(&path).unwrap(), DOMAIN, SELECTOR, None).unwrap_err();
    assert!(matches!(error, DkimError::Key(_)), "{error}");
    // Debug never shows the key.
    let shown = format!("{:?}", signer(rsa_key()));
    assert!(
        shown.contains("mail2026") && !shown.contains("PRIVATE"),
        "{shown}"
    );
}
