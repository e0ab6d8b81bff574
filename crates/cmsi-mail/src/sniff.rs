//! Telling an image's type from its first bytes, for `type: "image"`.

/// The MIME type of a PNG, JPEG, GIF, WebP or BMP file, judged by its signature.
pub(crate) fn sniff_image(head: &[u8]) -> Option<mime::Mime> {
    let found = if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        mime::IMAGE_PNG
    } else if head.starts_with(b"\xff\xd8\xff") {
        mime::IMAGE_JPEG
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        mime::IMAGE_GIF
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        "image/webp".parse().ok()?
    } else if head.starts_with(b"BM") {
        mime::IMAGE_BMP
    } else {
        return None;
    };
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_five_signatures() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("image/png")),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", Some("image/jpeg")),
            (b"GIF89a\x01\0", Some("image/gif")),
            (b"GIF87a", Some("image/gif")),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"BM\x36\0\0\0", Some("image/bmp")),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (b"%PDF-1.7", None),
            (b"", None),
            (b"\x89PN", None),
        ];
        for (head, expected) in cases {
            assert_eq!(
                sniff_image(head).map(|m| m.to_string()).as_deref(),
                *expected,
                "{head:?}"
            );
        }
    }
}
