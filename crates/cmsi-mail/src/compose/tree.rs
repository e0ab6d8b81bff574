//! The MIME tree (SPEC §3): which multiparts hold which parts, their
//! boundaries, and each leaf's headers.

use encodify::qp;
use mail_builder::Writer;

use crate::message::{Attachment, BodyFormat, Data, Disposition, Message};

use super::encode::{Encoding, PreparedBody, write_base64, write_wrapped};
use super::params::{write_attachment_type, write_disposition};

/// What the reader is shown: the body, and, for HTML, its plain-text
/// alternative.
pub(super) struct Content<'b> {
    pub(super) format: BodyFormat,
    pub(super) body: PreparedBody<'b>,
    /// The text of an HTML body, when there is one to send.
    pub(super) text: Option<PreparedBody<'b>>,
}

impl Content<'_> {
    /// The literal texts (7bit parts) that no boundary may occur in.
    fn literals(&self) -> [Option<&[u8]>; 2] {
        [
            self.body.literal(),
            self.text.as_ref().and_then(PreparedBody::literal),
        ]
    }

    /// The content type of the part that holds the content.
    fn content_type(&self) -> &'static str {
        match (self.format, &self.text) {
            (BodyFormat::Html, Some(_)) => "multipart/alternative",
            (BodyFormat::Html, None) => "text/html",
            (BodyFormat::Text, _) => "text/plain",
        }
    }

    /// The body part, or `multipart/alternative` [text/plain, text/html].
    fn write<W: Writer>(&self, w: &mut W, rng: &mut fastrand::Rng) {
        let Some(text) = &self.text else {
            return write_body_part(w, self.format, &self.body);
        };
        let boundary = boundary(rng, &self.literals());
        write_multipart_headers(w, b"multipart/alternative", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        write_body_part(w, BodyFormat::Text, text);
        parts.next(w);
        write_body_part(w, self.format, &self.body);
        parts.close(w);
    }
}

impl Message<'_> {
    /// The MIME tree (SPEC §3): the content alone when nothing is attached;
    /// `multipart/related` around an HTML content and its inline parts; and
    /// `multipart/mixed` around the content and the files. An HTML content
    /// with its text is `multipart/alternative` [text/plain, text/html].
    pub(super) fn write_tree<W: Writer>(
        &self,
        w: &mut W,
        rng: &mut fastrand::Rng,
        content: &Content<'_>,
    ) {
        if self.attachments.is_empty() {
            return content.write(w, rng);
        }
        let related = content.format == BodyFormat::Html
            && self
                .attachments
                .iter()
                .any(|a| a.disposition == Disposition::Inline);
        let files = || {
            self.attachments
                .iter()
                .filter(move |a| !related || a.disposition == Disposition::Attachment)
        };
        if related && files().next().is_none() {
            return self.write_related(w, rng, content);
        }

        let boundary = boundary(rng, &content.literals());
        write_multipart_headers(w, b"multipart/mixed", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        if related {
            self.write_related(w, rng, content);
        } else {
            content.write(w, rng);
        }
        for attachment in files() {
            parts.next(w);
            write_attachment_part(w, attachment);
        }
        parts.close(w);
    }

    fn write_related<W: Writer>(&self, w: &mut W, rng: &mut fastrand::Rng, content: &Content<'_>) {
        let boundary = boundary(rng, &content.literals());
        // RFC 2387: `type` is the content type of the root part.
        let header = format!("multipart/related; type=\"{}\"", content.content_type());
        write_multipart_headers(w, header.as_bytes(), &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        content.write(w, rng);
        for attachment in self
            .attachments
            .iter()
            .filter(|a| a.disposition == Disposition::Inline)
        {
            parts.next(w);
            write_attachment_part(w, attachment);
        }
        parts.close(w);
    }
}

/// A boundary that cannot occur in base64 or quoted-printable text (`=_` never
/// does, RFC 2045 §6.7) and, checked here, not in the 7bit texts either.
fn boundary(rng: &mut fastrand::Rng, literals: &[Option<&[u8]>]) -> String {
    loop {
        let mut boundary = String::with_capacity(32);
        boundary.push_str("=_");
        boundary.extend(std::iter::repeat_with(|| rng.alphanumeric()).take(30));
        let clashes = literals
            .iter()
            .flatten()
            .any(|text| memchr::memmem::find(text, boundary.as_bytes()).is_some());
        if !clashes {
            return boundary;
        }
    }
}

fn write_multipart_headers<W: Writer>(w: &mut W, content_type: &[u8], boundary: &str) {
    w.write(b"Content-Type: ");
    w.write(content_type);
    w.write(b";\r\n boundary=\"");
    w.write(boundary.as_bytes());
    w.write(b"\"\r\n\r\n");
}

/// Writes the delimiters between the parts of one multipart.
struct Parts<'b> {
    boundary: &'b str,
    first: bool,
}

impl<'b> Parts<'b> {
    fn new(boundary: &'b str) -> Self {
        Parts {
            boundary,
            first: true,
        }
    }

    fn next<W: Writer>(&mut self, w: &mut W) {
        if !self.first {
            w.write(b"\r\n");
        }
        self.first = false;
        w.write(b"--");
        w.write(self.boundary.as_bytes());
        w.write(b"\r\n");
    }

    fn close<W: Writer>(self, w: &mut W) {
        w.write(b"\r\n--");
        w.write(self.boundary.as_bytes());
        w.write(b"--\r\n");
    }
}

fn write_body_part<W: Writer>(w: &mut W, format: BodyFormat, body: &PreparedBody<'_>) {
    w.write(match format {
        BodyFormat::Html => b"Content-Type: text/html; charset=utf-8\r\n".as_slice(),
        BodyFormat::Text => b"Content-Type: text/plain; charset=utf-8\r\n".as_slice(),
    });
    w.write(b"Content-Transfer-Encoding: ");
    w.write(body.encoding.name());
    w.write(b"\r\n\r\n");
    match body.encoding {
        Encoding::SevenBit => w.write(&body.text),
        Encoding::QuotedPrintable => {
            w.append_with(body.text.len() * 3 / 2, |buffer| {
                qp::BODY.encode_append(&body.text, buffer)
            });
        }
        Encoding::Base64 => write_base64(w, &body.text),
    }
}

fn write_attachment_part<W: Writer>(w: &mut W, attachment: &Attachment<'_>) {
    write_attachment_type(w, &attachment.content_type, &attachment.filename);
    write_disposition(w, attachment.disposition, &attachment.filename);
    w.write(b"Content-Transfer-Encoding: base64\r\n");
    if let Some(id) = &attachment.content_id {
        w.write(b"Content-ID: <");
        w.write(id.as_bytes());
        w.write(b">\r\n");
    }
    w.write(b"\r\n");
    match &attachment.data {
        Data::Base64 { text, .. } => write_wrapped(w, text.as_bytes()),
        Data::Bytes(bytes) => write_base64(w, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_avoid_the_literal_body() {
        let mut rng = fastrand::Rng::with_seed(1);
        let first = boundary(&mut rng, &[None, None]);
        let mut rng = fastrand::Rng::with_seed(1);
        let body = format!("text\r\n--{first}\r\n");
        let second = boundary(&mut rng, &[None, Some(body.as_bytes())]);
        assert_ne!(first, second);
        assert!(second.starts_with("=_") && second.len() == 32);
    }
}
