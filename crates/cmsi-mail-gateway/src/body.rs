//! Reading request bodies within bounds: a size limit per request, a budget of
//! bytes over all requests, a stall timeout and a deadline.
//!
//! The budget is what keeps clients without credentials from making the
//! server big: every byte of a body being read or held counts against it until
//! the request is answered, whoever sent it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// What a body with a declared length reserves before its first byte: enough
/// for most requests in one step, little enough that the connection cap times
/// this stays well inside the budget. Never more than a 64th of the budget.
pub(crate) const FIRST_RESERVATION: usize = 64 * 1024;

/// A body read in full, and its share of the budget (given back on drop).
#[derive(Debug)]
pub(crate) struct ReadBody {
    pub(crate) bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the request body is larger than {0} bytes (max_body_bytes)")]
    TooLarge(usize),
    #[error("the request body stalled: no data for {} s (body_timeout_secs)", .0.as_secs())]
    Stalled(Duration),
    #[error("the request body did not arrive within {} s (request_timeout_secs)", .0.as_secs())]
    Late(Duration),
    #[error(
        "the server is busy reading other requests (max_inflight_body_bytes); try again shortly"
    )]
    Busy,
    #[error("cannot read the request body: {0}")]
    Broken(String),
}

/// The limits and the shared budget.
#[derive(Debug)]
pub(crate) struct BodyReader {
    max_body_bytes: usize,
    budget: Arc<Semaphore>,
    /// The budget's size, for [`BodyReader::in_use`].
    capacity: usize,
    /// [`FIRST_RESERVATION`], or a 64th of a smaller budget.
    first_reservation: usize,
    stall: Duration,
    deadline: Duration,
}

impl BodyReader {
    pub(crate) fn new(
        max_body_bytes: usize,
        max_inflight: usize,
        stall: Duration,
        deadline: Duration,
    ) -> Self {
        let capacity = max_inflight.min(Semaphore::MAX_PERMITS);
        BodyReader {
            max_body_bytes,
            budget: Arc::new(Semaphore::new(capacity)),
            capacity,
            first_reservation: FIRST_RESERVATION.min(capacity / 64).max(1),
            stall,
            deadline,
        }
    }

    /// How long a request may take to arrive (`request_timeout_secs`); also
    /// the longest wait for a delivery slot.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Bytes of the budget held now by bodies being read or held.
    pub(crate) fn in_use(&self) -> usize {
        self.capacity
            .saturating_sub(self.budget.available_permits())
    }

    /// Reads `body` in full under the budget.
    ///
    /// A request whose app is already `authenticated` (credentials in the
    /// header) reserves its declared `Content-Length` at once, all or
    /// nothing, so that large uploads wait their turn rather than hold part
    /// of the budget each while waiting for more. Any other body reserves as
    /// its bytes arrive: at first up to [`FIRST_RESERVATION`] (a 64th of a
    /// smaller budget), then doubling, never past its declared length, so
    /// that a client without credentials holds at most about twice what it
    /// has sent: announcing 32 MiB and sending nothing takes 64 KiB at most.
    pub(crate) async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        authenticated: bool,
    ) -> Result<ReadBody, BodyError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|len| len > self.max_body_bytes) {
            return Err(BodyError::TooLarge(self.max_body_bytes));
        }
        let deadline = Instant::now() + self.deadline;
        let first = match declared {
            Some(len) if authenticated => len,
            Some(len) => len.min(self.first_reservation),
            None => 0,
        };
        let mut reserved = self.reserve(None, first, deadline).await?;
        let mut buffer = Vec::with_capacity(first);
        let mut body = body;
        loop {
            let wait = self
                .stall
                .min(deadline.saturating_duration_since(Instant::now()));
            let frame = match tokio::time::timeout(wait, body.frame()).await {
                Ok(Some(frame)) => frame.map_err(|error| BodyError::Broken(error.to_string()))?,
                Ok(None) => break,
                Err(_) if Instant::now() >= deadline => return Err(BodyError::Late(self.deadline)),
                Err(_) => return Err(BodyError::Stalled(self.stall)),
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            let len = buffer.len() + data.len();
            if len > self.max_body_bytes {
                return Err(BodyError::TooLarge(self.max_body_bytes));
            }
            let have = held(&reserved);
            if len > have {
                // Grow by doubling up to the declared length (hyper refuses a
                // body longer than declared), and hold in the budget exactly
                // what the buffer takes.
                let ceiling = declared
                    .filter(|&declared| declared >= len)
                    .unwrap_or(self.max_body_bytes);
                let target = len.max(have.saturating_mul(2)).min(ceiling);
                reserved = self.reserve(reserved, target - have, deadline).await?;
                buffer.reserve_exact(target - buffer.len());
            }
            buffer.extend_from_slice(&data);
        }
        Ok(ReadBody {
            bytes: Bytes::from(buffer),
            _budget: reserved,
        })
    }

    /// Adds `more` bytes to `held` from the budget, waiting at most the stall
    /// timeout (a full budget means the server is busy, not that this client
    /// is slow).
    async fn reserve(
        &self,
        held: Option<OwnedSemaphorePermit>,
        more: usize,
        deadline: Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, BodyError> {
        if more == 0 {
            return Ok(held);
        }
        let more = u32::try_from(more).map_err(|_| BodyError::TooLarge(self.max_body_bytes))?;
        let wait = self
            .stall
            .min(deadline.saturating_duration_since(Instant::now()));
        let acquired =
            tokio::time::timeout(wait, Arc::clone(&self.budget).acquire_many_owned(more))
                .await
                .map_err(|_| BodyError::Busy)?
                // The semaphore is never closed.
                .map_err(|_| BodyError::Busy)?;
        Ok(Some(match held {
            Some(mut held) => {
                held.merge(acquired);
                held
            }
            None => acquired,
        }))
    }
}

fn held(permit: &Option<OwnedSemaphorePermit>) -> usize {
    permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
}
