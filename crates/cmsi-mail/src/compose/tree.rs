//! The MIME tree (SPEC §3): which multiparts hold which parts, their
//! boundaries, and each leaf's headers.

use encodify::qp;
use mail_builder::Writer;

use crate::message::{Attachment, BodyFormat, Data, Disposition, Message};

use super::encode::{Encoding, PreparedBody, write_base64, write_wrapped};
use super::params::{write_attachment_type, write_disposition};

impl Message<'_> {
    /// The MIME tree (SPEC §3): a single part when nothing is attached;
    /// `multipart/related` around an HTML body and its inline parts; and
    /// `multipart/mixed` around the body and the files.
    pub(super) fn write_tree<W: Writer>(
        &self,
        w: &mut W,
        rng: &mut fastrand::Rng,
        body: &PreparedBody<'_>,
    ) {
        let format = self.body.format;
        if self.attachments.is_empty() {
            return write_body_part(w, format, body);
        }
        let related = format == BodyFormat::Html
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
            return self.write_related(w, rng, body);
        }

        let boundary = boundary(rng, body.literal());
        write_multipart_headers(w, b"multipart/mixed", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        if related {
            self.write_related(w, rng, body);
        } else {
            write_body_part(w, format, body);
        }
        for attachment in files() {
            parts.next(w);
            write_attachment_part(w, attachment);
        }
        parts.close(w);
    }

    fn write_related<W: Writer>(
        &self,
        w: &mut W,
        rng: &mut fastrand::Rng,
        body: &PreparedBody<'_>,
    ) {
        let boundary = boundary(rng, body.literal());
        write_multipart_headers(w, b"multipart/related; type=\"text/html\"", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        write_body_part(w, BodyFormat::Html, body);
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
/// does, RFC 2045 §6.7) and, checked here, not in the 7bit body either.
fn boundary(rng: &mut fastrand::Rng, literal: Option<&[u8]>) -> String {
    loop {
        let mut boundary = String::with_capacity(32);
        boundary.push_str("=_");
        boundary.extend(std::iter::repeat_with(|| rng.alphanumeric()).take(30));
        let clashes =
            literal.is_some_and(|text| memchr::memmem::find(text, boundary.as_bytes()).is_some());
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
        let first = boundary(&mut rng, None);
        let mut rng = fastrand::Rng::with_seed(1);
        let body = format!("text\r\n--{first}\r\n");
        let second = boundary(&mut rng, Some(body.as_bytes()));
        assert_ne!(first, second);
        assert!(second.starts_with("=_") && second.len() == 32);
    }
}
