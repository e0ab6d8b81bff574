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

/// Both verifiers' verdict on `message`, signed for `domain`.
fn verdicts(message: &[u8], key: &DkimKey, domain: &str) -> (bool, bool) {
    (
        dkimpy_verify(message, &key.record).0,
        mail_auth_verify(message, domain, SELECTOR, &key.record),
    )
}

/// `message` with its body (what follows the first empty line) replaced.
fn with_body(message: &[u8], body: &[u8]) -> Vec<u8> {
    let end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    [&message[..end], body].concat()
}

#[test]
fn encoded_words_and_an_untidy_body_verify() {
    // Our composer's headers: CJK subject and names as folded encoded words.
    let composed = message(json!({
        "receiver": "张三 <zs@example.com>, 李四 <ls@example.com>",
        "cc": "\"运维, 值班\" <oncall@example.com>",
        "sender": "蓝鲸监控 <noreply@example.com>",
        "title": "【蓝鲸监控】生产环境告警：CPU 使用率持续超过 90%，请值班同学尽快处理 🚨",
        "content": "x",
        "body_format": "Text",
    }))
    .compose(&ComposeOptions::new());
    let head = String::from_utf8(composed.bytes.clone()).unwrap();
    assert!(head.contains("Subject: =?utf-8?"), "{head}");
    assert!(
        head.contains("\r\n =?utf-8?"),
        "a folded encoded word: {head}"
    );
    let head = head.split("\r\n\r\n").next().unwrap();
    let head: Vec<&str> = head
        .split("\r\n")
        .map(
            |line| match line.starts_with("Content-Transfer-Encoding:") {
                true => "Content-Transfer-Encoding: 7bit",
                false => line,
            },
        )
        .collect();
    // White-space runs, trailing white space, blank and white-space-only
    // lines inside, empty lines at the end.
    let body =
        b"Alert:\t\tCPU   over  90%   \r\n\r\n  indented\t \t line \r\n \t \r\nend\r\n\r\n\r\n\r\n";
    let unsigned = [head.join("\r\n").as_bytes(), b"\r\n\r\n", body].concat();
    for key in [rsa_key(), ed25519_key()] {
        let signed = signer(key)
            .sign(Composed {
                message_id: composed.message_id.clone(),
                bytes: unsigned.clone(),
            })
            .unwrap();
        let algorithm = key.record.split(';').nth(1).unwrap();
        assert_eq!(
            verdicts(&signed.bytes, key, DOMAIN),
            (true, true),
            "{algorithm}"
        );
        // What relaxed canonicalisation forgives: white space at line ends,
        // wider runs, more empty lines at the end.
        let forgiven =
            b"Alert: CPU\t over 90%\r\n\r\n indented line\t\r\n\r\nend\r\n\r\n\r\n\r\n\r\n";
        assert_eq!(
            verdicts(&with_body(&signed.bytes, forgiven), key, DOMAIN),
            (true, true),
            "{algorithm}"
        );
        // What it does not: a word split, an empty line inside, a letter.
        for changed in [
            &b"Alert: CPU over 9 0%\r\n\r\n indented line\r\n\r\nend\r\n"[..],
            b"Alert: CPU over 90%\r\n\r\n\r\n indented line\r\n\r\nend\r\n",
            b"Alert: CPU over 90%\r\n\r\n indented line\r\n\r\nEnd\r\n",
        ] {
            assert_eq!(
                verdicts(&with_body(&signed.bytes, changed), key, DOMAIN),
                (false, false),
                "{algorithm}: {}",
                String::from_utf8_lossy(changed)
            );
        }
        // A white-space-only last line is an empty line at the end (RFC 6376
        // §3.4.4 removes its white space first), as dkimpy, OpenDKIM and
        // Gmail read it; mail-auth 0.13 counts it as content (fixed in later
        // releases), so only dkimpy judges this one.
        let trailing = b"Alert: CPU over 90%\r\n\r\n indented line\r\n\r\nend\r\n \t \r\n\r\n";
        assert!(
            dkimpy_verify(&with_body(&signed.bytes, trailing), &key.record).0,
            "{algorithm}"
        );
        // The same holds for a header: unfolded and respaced it verifies.
        let text = String::from_utf8(signed.bytes.clone()).unwrap();
        let respaced = text.replacen("\r\nSubject: =?", "\r\nSubject:   =?", 1);
        let respaced = respaced.replacen("?=\r\n =?", "?=  \t =?", 1);
        assert_ne!(respaced, text);
        assert_eq!(
            verdicts(respaced.as_bytes(), key, DOMAIN),
            (true, true),
            "{algorithm}"
        );
    }
}

#[test]
fn repeated_headers_are_signed_from_the_bottom_up() {
    let unsigned = b"From: a@example.com\r\nComments: first\r\nTo: b@example.com\r\n\
        Comments: second\r\nSubject: s\r\n\r\nbody\r\n";
    let headers: Vec<String> = ["From", "Comments", "Subject", "Keywords"]
        .map(String::from)
        .to_vec();
    for key in [rsa_key(), ed25519_key()] {
        let pem = std::fs::read(&key.pem).unwrap();
        let signer = DkimSigner::from_pem(&pem, DOMAIN, SELECTOR, Some(&headers)).unwrap();
        let header = signer.signature(unsigned).unwrap();
        let unfolded = header.replace("\r\n\t", " ");
        assert!(
            unfolded.contains(" h=From:Comments:Comments:Subject:Keywords;"),
            "{header}"
        );
        let signed = [header.as_bytes(), unsigned].concat();
        assert_eq!(verdicts(&signed, key, DOMAIN), (true, true));
        // The two instances swapped, or an unsigned Keywords added: refused.
        let text = String::from_utf8(signed).unwrap();
        let swapped = text
            .replace("Comments: first", "Comments: @")
            .replace("Comments: second", "Comments: first")
            .replace("Comments: @", "Comments: second");
        let added = text.replace("\r\n\r\nbody", "\r\nKeywords: k\r\n\r\nbody");
        for changed in [swapped, added] {
            assert_eq!(verdicts(changed.as_bytes(), key, DOMAIN), (false, false));
        }
    }
}

#[test]
fn the_signature_header_is_folded_within_76_columns() {
    // A 63-letter label: `d=` cannot fit a 76-column line, and stands alone.
    let domain = format!("{}.example.com", "d".repeat(63));
    let headers: Vec<String> = [
        "From",
        "Reply-To",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "X-Some-Rather-Long-Header-Name-That-Still-Fits-On-Its-Own-Line-Easily",
    ]
    .map(String::from)
    .to_vec();
    for key in [rsa_key(), ed25519_key()] {
        let pem = std::fs::read(&key.pem).unwrap();
        let signer = DkimSigner::from_pem(&pem, &domain, SELECTOR, Some(&headers)).unwrap();
        let composed = message(w1()).compose(&ComposeOptions::new());
        let signed = signer.sign(composed.clone()).unwrap();
        cmsi_mail_testkit::oracle::assert_wire_format(&signed.bytes);
        let header =
            std::str::from_utf8(&signed.bytes[..signed.bytes.len() - composed.bytes.len()])
                .unwrap();
        let lines: Vec<&str> = header.strip_suffix("\r\n").unwrap().split("\r\n").collect();
        assert!(lines.len() > 5, "{header}");
        for (index, line) in lines.iter().enumerate() {
            assert!(index == 0 || line.starts_with('\t'), "{header}");
            assert!(
                line.len() <= 76 || *line == format!("\td={domain};"),
                "{} columns: {line}",
                line.len()
            );
        }
        assert_eq!(verdicts(&signed.bytes, key, &domain), (true, true));
    }
}

#[test]
fn the_dns_record_is_the_published_key_and_pkcs1_signs_too() {
    for key in [rsa_key(), ed25519_key()] {
        assert_eq!(signer(key).dns_record(), key.record);
    }
    // The same RSA key in PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    let output = std::process::Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(&rsa_key().pem)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        output
            .stdout
            .starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
    );
    let pkcs1 = DkimSigner::from_pem(&output.stdout, DOMAIN, SELECTOR, None).unwrap();
    assert_eq!(pkcs1.algorithm(), "rsa-sha256");
    assert_eq!(pkcs1.dns_record(), rsa_key().record);
    let signed = pkcs1
        .sign(message(w1()).compose(&ComposeOptions::new()))
        .unwrap();
    assert_eq!(verdicts(&signed.bytes, rsa_key(), DOMAIN), (true, true));
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
