//! `send_msg` and `get_msg_type`: the ESB's message-type API.
//!
//! `msg_type=mail` is `send_mail` through [`Gateway::send`] with the request
//! read as `send_msg` reads it (usernames only: `receiver` and `cc` are
//! dropped, as the ESB drops them). A type with a `[channels.NAME]` is
//! forwarded to its `dest_url` (see `channels.rs`); any other is refused,
//! naming the type.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::MethodRouter;
use cmsi_mail::{Error, EsbResponse, Problem, RequestError, SendMailRequest, split_username_list};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Map, Value, json};

use crate::Gateway;
use crate::auth::Require;
use crate::outcome::{Answering, Outcome};
use crate::pipeline::{Call, Fields, off_runtime};

/// The paths the ESB serves `send_msg` on.
const SEND_MSG_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/send_msg/",
    "/api/c/compapi/cmsi/send_msg",
    "/api/c/compapi/v2/cmsi/send_msg/",
    "/api/c/compapi/v2/cmsi/send_msg",
];

/// The paths the ESB serves `get_msg_type` on.
const GET_MSG_TYPE_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/get_msg_type/",
    "/api/c/compapi/cmsi/get_msg_type",
    "/api/c/compapi/v2/cmsi/get_msg_type/",
    "/api/c/compapi/v2/cmsi/get_msg_type",
];

/// A message type the ESB knows: its `msg_type`, the component that sends
/// it, its labels and icons (`.ico`, sent as bare base64 as the ESB does).
struct Kind {
    name: &'static str,
    interface: &'static str,
    label_en: &'static str,
    label_zh: &'static str,
    active_icon: &'static [u8],
    inactive_icon: &'static [u8],
}

/// The ESB's message types, in the order it lists them (`toolkit/configs.py`).
const KINDS: [Kind; 4] = [
    Kind {
        name: "weixin",
        interface: "send_weixin",
        label_en: "weixin",
        label_zh: "微信",
        active_icon: include_bytes!("icons/weixin_active.ico"),
        inactive_icon: include_bytes!("icons/weixin_unactive.ico"),
    },
    Kind {
        name: "mail",
        interface: "send_mail",
        label_en: "mail",
        label_zh: "邮件",
        active_icon: include_bytes!("icons/mail_active.ico"),
        inactive_icon: include_bytes!("icons/mail_unactive.ico"),
    },
    Kind {
        name: "sms",
        interface: "send_sms",
        label_en: "sms",
        label_zh: "短信",
        active_icon: include_bytes!("icons/sms_active.ico"),
        inactive_icon: include_bytes!("icons/sms_unactive.ico"),
    },
    Kind {
        name: "voice",
        interface: "send_voice_msg",
        label_en: "voice",
        label_zh: "语音",
        active_icon: include_bytes!("icons/voice_active.ico"),
        inactive_icon: include_bytes!("icons/voice_unactive.ico"),
    },
];

/// The icons of a configured channel the ESB does not know.
const CHANNEL_ICONS: [&[u8]; 2] = [
    include_bytes!("icons/channel_active.ico"),
    include_bytes!("icons/channel_unactive.ico"),
];

/// The ESB component a message type stands for, for messages: `send_weixin`,
/// `send_voice_msg`, or `send_NAME` for a type the ESB does not know.
pub(crate) fn interface_of(name: &str) -> String {
    KINDS
        .iter()
        .find(|kind| kind.name == name)
        .map_or_else(|| format!("send_{name}"), |kind| kind.interface.to_owned())
}

/// The fields `send_msg` has beside `send_mail`'s. Text fields take a string,
/// a number or a bool (a WeChat agent id is a number), as Django's form
/// fields do.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct MsgFields {
    #[serde(deserialize_with = "text")]
    pub(crate) msg_type: Option<String>,
    #[serde(deserialize_with = "text")]
    date: Option<String>,
    #[serde(deserialize_with = "text")]
    remark: Option<String>,
    #[serde(deserialize_with = "text")]
    wx_qy_agentid: Option<String>,
    #[serde(deserialize_with = "text")]
    wx_qy_corpsecret: Option<String>,
}

/// The WeChat secret is never shown.
impl fmt::Debug for MsgFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgFields")
            .field("msg_type", &self.msg_type)
            .field("date", &self.date)
            .field("remark", &self.remark)
            .field("wx_qy_agentid", &self.wx_qy_agentid)
            .field(
                "wx_qy_corpsecret",
                &self.wx_qy_corpsecret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Adds the ESB's `send_msg` and `get_msg_type` routes.
pub(crate) fn routes(mut router: Router<Arc<Gateway>>) -> Router<Arc<Gateway>> {
    let send: MethodRouter<Arc<Gateway>> = MethodRouter::new().get(send_msg).post(send_msg);
    for path in SEND_MSG_PATHS {
        router = router.route(path, send.clone());
    }
    let types: MethodRouter<Arc<Gateway>> =
        MethodRouter::new().get(get_msg_type).post(get_msg_type);
    for path in GET_MSG_TYPE_PATHS {
        router = router.route(path, types.clone());
    }
    router
}

async fn send_msg(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("send_msg");
    gateway
        .answer(
            answering,
            Require::AppAndUser,
            request,
            async |call, headers, request_id| gateway.send_message(call, headers, request_id).await,
        )
        .await
}

async fn get_msg_type(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("get_msg_type");
    gateway
        .answer(
            answering,
            Require::AppAndUser,
            request,
            async |call, headers, _| {
                Outcome::ok(
                    EsbResponse::ok_with_data(gateway.message_types(headers, Listing::Esb)),
                    call.app,
                )
            },
        )
        .await
}

/// What a `msg_type` comes to.
enum Dispatch<'g> {
    Mail,
    Channel(&'g str),
}

/// How a list of message types is written: as the ESB's `get_msg_type`, or
/// as bk-cmsi's `channels`, whose clients read `name` and `enabled` or
/// `enable` besides `label` and `is_active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Esb,
    Apigw,
}

impl Gateway {
    /// Sends an authenticated `send_msg` call by its `msg_type`.
    pub(crate) async fn send_message(
        self: &Arc<Self>,
        call: Call,
        headers: &HeaderMap,
        request_id: &str,
    ) -> Outcome {
        let fields = Arc::clone(&call.fields);
        let read = off_runtime(fields.len(), move || fields.parse::<MsgFields>()).await;
        let msg_type = match read {
            Some(Ok(fields)) => fields.msg_type,
            Some(Err(error)) => return Outcome::error(&Error::Request(error), Some(call.app)),
            None => return Outcome::internal(),
        };
        match self.dispatch(msg_type.as_deref()) {
            Ok(Dispatch::Mail) => self.send(call, mail_request).await,
            Ok(Dispatch::Channel(name)) => self.forward(call, name, headers, request_id).await,
            Err(error) => Outcome::error(&Error::Request(error), Some(call.app)),
        }
    }

    fn dispatch(&self, msg_type: Option<&str>) -> Result<Dispatch<'_>, RequestError> {
        let msg_type = match msg_type.map(str::trim) {
            None => return Err(RequestError::new("msg_type", Problem::Missing)),
            Some("") => return Err(RequestError::new("msg_type", Problem::Empty)),
            Some(msg_type) => msg_type,
        };
        if msg_type == "mail" {
            return Ok(Dispatch::Mail);
        }
        if let Some((name, _)) = self.channels.get_key_value(msg_type) {
            return Ok(Dispatch::Channel(name));
        }
        let configured = std::iter::once("mail")
            .chain(self.channels.keys().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ");
        let problem = if KINDS.iter().any(|kind| kind.name == msg_type) {
            Problem::NotConfigured {
                value: msg_type.to_owned(),
                configured,
            }
        } else {
            Problem::UnknownMessageType {
                value: msg_type.to_owned(),
                known: KINDS
                    .iter()
                    .map(|kind| kind.name)
                    .chain(self.extra_channels())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        };
        Err(RequestError::new("msg_type", problem))
    }

    /// Configured channels the ESB does not know, in name order.
    fn extra_channels(&self) -> impl Iterator<Item = &str> {
        self.channels
            .keys()
            .map(String::as_str)
            .filter(|name| KINDS.iter().all(|kind| kind.name != *name))
    }

    /// The message types as `get_msg_type` lists them: the ESB's four in its
    /// order (mail and configured channels active), then other configured
    /// channels. Labels are English when `Blueking-Language` is absent or
    /// English, else Chinese, as the ESB chooses them.
    pub(crate) fn message_types(&self, headers: &HeaderMap, listing: Listing) -> Value {
        let english = headers
            .get("blueking-language")
            .is_none_or(|value| is_english(value.as_bytes()));
        let known = KINDS.iter().map(|kind| {
            let active = kind.name == "mail" || self.channels.contains_key(kind.name);
            let label = if english {
                kind.label_en
            } else {
                kind.label_zh
            };
            let icon = if active {
                kind.active_icon
            } else {
                kind.inactive_icon
            };
            (kind.name, label, active, icon)
        });
        let [active_icon, _] = CHANNEL_ICONS;
        let extra = self
            .extra_channels()
            .map(|name| (name, name, true, active_icon));
        let items = known
            .chain(extra)
            .map(|(name, label, active, icon)| {
                let icon = encodify::base64::STANDARD.encode(icon);
                match listing {
                    Listing::Esb => json!({
                        "type": name, "label": label, "is_active": active, "icon": icon,
                    }),
                    Listing::Apigw => json!({
                        "type": name, "name": label, "label": label, "is_active": active,
                        "enabled": active, "enable": active, "icon": icon,
                    }),
                }
            })
            .collect();
        Value::Array(items)
    }
}

/// `en`, `EN`, `en-US`, `en_us`: the ESB tests for exactly `en`; the
/// regional forms are English too.
fn is_english(value: &[u8]) -> bool {
    let value = value.trim_ascii().to_ascii_lowercase();
    value == b"en" || value.starts_with(b"en-") || value.starts_with(b"en_")
}

/// `send_msg` with `msg_type=mail` as a `send_mail` request: usernames only,
/// as the ESB's `send_msg` form has no `receiver` or `cc`; at least one
/// receiver username.
pub(crate) fn mail_request(fields: &Fields) -> Result<SendMailRequest<'_>, RequestError> {
    let mut request = fields.request()?;
    request.receiver.clear();
    request.cc.clear();
    if usernames(&request.receiver_username).is_empty() {
        return Err(RequestError::new("receiver__username", Problem::Missing));
    }
    Ok(request)
}

/// The JSON the ESB POSTs to a `dest_url` for `send_msg` (its form's cleaned
/// fields, with the per-type rewrites of `weixin` and `voice`), and how many
/// receivers it names. Attachments keep their base64 (the ESB's own forward
/// fails on them). Credentials are never in it.
pub(crate) fn forward_body(
    fields: &Fields,
    msg_type: &str,
) -> Result<(Map<String, Value>, usize), RequestError> {
    let request = fields.request()?;
    let extra: MsgFields = fields.parse()?;
    let receivers = usernames(&request.receiver_username);
    if receivers.is_empty() {
        return Err(RequestError::new("receiver__username", Problem::Missing));
    }
    let title = required("title", request.title.as_deref())?;
    let content = required("content", request.content.as_deref())?;
    let optional = |value: Option<&str>| value.map_or("", str::trim).to_owned();
    let date = optional(extra.date.as_deref());
    let remark = optional(extra.remark.as_deref());
    let is_content_base64 = request.is_content_base64.unwrap_or(false);
    let count = receivers.len();
    let mut body = Map::new();
    body.insert("receiver__username".into(), json!(receivers));
    body.insert("sender".into(), json!(optional(request.sender.as_deref())));
    body.insert(
        "cc__username".into(),
        json!(usernames(&request.cc_username)),
    );
    body.insert("title".into(), json!(title));
    body.insert("content".into(), json!(content));
    body.insert(
        "body_format".into(),
        json!(optional(request.body_format.as_deref())),
    );
    body.insert("attachments".into(), json!(request.attachments));
    body.insert("date".into(), json!(date));
    body.insert("remark".into(), json!(remark));
    body.insert(
        "wx_qy_agentid".into(),
        json!(optional(extra.wx_qy_agentid.as_deref())),
    );
    body.insert(
        "wx_qy_corpsecret".into(),
        json!(optional(extra.wx_qy_corpsecret.as_deref())),
    );
    body.insert("is_content_base64".into(), json!(is_content_base64));
    match msg_type {
        "voice" => {
            body.insert("auto_read_message".into(), json!(content));
        }
        "weixin" => {
            body.insert(
                "data".into(),
                json!({
                    "heading": title, "message": content, "date": date, "remark": remark,
                    "is_message_base64": is_content_base64,
                }),
            );
        }
        _ => {}
    }
    Ok((body, count))
}

/// The usernames of a list field, split as the ESB splits them.
fn usernames(field: &[String]) -> Vec<String> {
    field
        .iter()
        .flat_map(|entry| split_username_list(entry))
        .map(str::to_owned)
        .collect()
}

/// A required text field, trimmed as Django's `CharField` trims it.
fn required<'t>(field: &'static str, value: Option<&'t str>) -> Result<&'t str, RequestError> {
    match value.map(str::trim) {
        None => Err(RequestError::new(field, Problem::Missing)),
        Some("") => Err(RequestError::new(field, Problem::Empty)),
        Some(text) => Ok(text),
    }
}

/// A text field: a string, a number or a bool as text; `null` is absent.
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct TextVisitor;

    impl Visitor<'_> for TextVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(if v { "True" } else { "False" }.to_owned()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(TextVisitor)
}
