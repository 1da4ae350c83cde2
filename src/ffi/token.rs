//! The C ABI of the token source: a host that supplies the client's access tokens itself.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::{client_arg, guard, opt_str_arg, str_arg, PanClient};
use crate::auth::TokenNeed;
use crate::error::Error;

/// Token source reason (`pan_token_source_callback`): there is no token yet, or the last one is
/// due for renewal.
pub const PAN_TOKEN_NEEDED: i32 = 0;
/// Token source reason (`pan_token_source_callback`): the service refused the last token
/// (401, or it was pushed out by newer logins): give a new one (refresh it).
pub const PAN_TOKEN_REFUSED: i32 = 1;

/// What a token source answers, filled in by `pan_token_reply_set()` or
/// `pan_token_reply_fail()`. Opaque; valid only during the callback that received it.
pub struct PanTokenReply {
    answer: RefCell<Option<Result<(String, i64), String>>>,
}

/// Supplies a client's access token (see `pan_client_set_token_source()`).
///
/// @param user_data  the pointer given to `pan_client_set_token_source()`, passed through.
/// @param reason     `PAN_TOKEN_NEEDED` or `PAN_TOKEN_REFUSED`.
/// @param reply      where the answer goes: call `pan_token_reply_set()` with the token, or
///                   `pan_token_reply_fail()` with why there is none, before returning.
///                   Valid only during this call.
pub type PanTokenSourceCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, reason: i32, reply: *mut PanTokenReply)>;

/// The C callback and its user data, callable from any thread that makes a call.
struct CSource {
    f: unsafe extern "C" fn(*mut c_void, i32, *mut PanTokenReply),
    user_data: usize,
}

/// Make the host the supplier of a client's access tokens (or stop it).
///
/// For tokens kept in a vault, handed out by an OAuth broker (a refresh-token flow, whose
/// refresh tokens may rotate on every use) or by any program that holds the credentials when
/// this one does not. The library calls `cb` when a call made without a token needs one: on
/// first use, when the last token is due for renewal (a little before the expiry `cb` gave),
/// and once after the service refused it (`PAN_TOKEN_REFUSED`). One thread at a time calls
/// `cb`; other threads that need the token wait for its answer and share it. With
/// `sharedState`, the token `cb` gave is shared with the account's other processes like a
/// fetched one, and a process asks its own source only when the stored token does not do.
/// A source replaces `clientID`/`clientSecret`; setting one (or clearing it) forgets the
/// client's cached token. An explicit `token` argument of a call always wins.
///
/// When `cb` fails (`pan_token_reply_fail()`, or it returned without answering), the call
/// that needed the token fails with `PAN_ERR_UNAUTHORIZED` and a message that starts
/// "the token source gave no token: " followed by the source's own words; the next call asks
/// again after 1 s (doubling to a minute while it keeps failing). A token with an expiry is
/// used until a tenth of its remaining life (at most 5 minutes) before it, however short.
///
/// @param client     a client, or NULL for the process-wide default one.
/// @param cb         the source, or NULL to go back to the client's credentials.
/// @param user_data  passed to `cb` unchanged; may be NULL. Must stay valid until the source
///                   is set again or cleared, and while calls already asking it run.
/// @return `PAN_OK`; the error of the process-wide client's configuration when `client` is
///         NULL and it cannot be made.
///
/// Inside `cb`, a call of the same client without a token fails with
/// `PAN_ERR_INVALID_ARGUMENT` (it would wait for `cb` itself); calls with a token of their
/// own work, and so does `pan_client_set_token_source()` (the new source is used from the
/// next need on). `cb` must not free the client. Other threads that need the token while
/// `cb` runs wait for it within their own `timeoutMs` (then `PAN_ERR_TIMEOUT`).
///
/// # Safety
/// `client` is NULL or live; `cb` is NULL or a valid function, callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn pan_client_set_token_source(
    client: *mut PanClient,
    cb: PanTokenSourceCallback,
    user_data: *mut c_void,
) -> i32 {
    guard(|| {
        // SAFETY: the caller's pointer, as documented.
        let client = unsafe { client_arg(client) }?;
        let Some(f) = cb else {
            client.set_token_source(None);
            return Ok(());
        };
        let source = CSource {
            f,
            user_data: user_data as usize,
        };
        client.set_token_source(Some(Arc::new(move |need: TokenNeed| {
            let mut reply = PanTokenReply {
                answer: RefCell::new(None),
            };
            // SAFETY: the caller promises a valid function and user data for as long as the
            // source is set; `reply` lives until the callback returns.
            unsafe { (source.f)(source.user_data as *mut c_void, need as i32, &mut reply) };
            reply.answer.into_inner().unwrap_or_else(|| {
                Err(
                    "the callback returned without calling pan_token_reply_set() or \
                     pan_token_reply_fail()"
                        .to_owned(),
                )
            })
        })));
        Ok(())
    })
}

/// Answer a token source's request with a token.
///
/// @param reply       the reply the source received.
/// @param token       the access token (copied; at most 8192 bytes of printable ASCII, as
///                    every token the library sends).
/// @param expires_at  when it expires, in Unix seconds, or 0 when unknown (it is then kept
///                    until the service refuses it, or for 30 days).
/// @return `PAN_OK`; `PAN_ERR_NULL_ARGUMENT`, `PAN_ERR_INVALID_UTF8`;
///         `PAN_ERR_INVALID_ARGUMENT` for a token the library cannot send (empty, too long,
///         spaces or control characters), a negative `expires_at` or a reply already
///         answered (the reply is then left unanswered).
///
/// # Safety
/// `reply` is the pointer the callback received, during the callback; `token` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn pan_token_reply_set(
    reply: *mut PanTokenReply,
    token: *const c_char,
    expires_at: i64,
) -> i32 {
    guard(|| {
        // SAFETY: as documented.
        let reply = unsafe { reply_arg(reply) }?;
        // SAFETY: as documented.
        let token = unsafe { str_arg(token, "token") }?;
        // Checked here, so that the source hears of it (a token the library cannot send).
        crate::token::Token::new(token).map_err(|e| {
            Error::invalid(format!("`token`: {}", e.message()))
                .redact(&[&crate::redact::Secret::new(token)])
        })?;
        if expires_at < 0 {
            return Err(Error::invalid(format!(
                "`expires_at` is {expires_at}: Unix seconds, or 0 for unknown"
            )));
        }
        answer(reply, Ok((token.to_owned(), expires_at)))
    })
}

/// Answer a token source's request with a failure: the call that needed the token fails with
/// `PAN_ERR_UNAUTHORIZED` and this message.
///
/// @param reply    the reply the source received.
/// @param message  why there is no token (copied; NULL: none given). It is shown to the
///                 caller of the failed call: put no secret in it.
/// @return `PAN_OK`; `PAN_ERR_NULL_ARGUMENT` for a NULL `reply`, `PAN_ERR_INVALID_UTF8`;
///         `PAN_ERR_INVALID_ARGUMENT` for a reply already answered.
///
/// # Safety
/// `reply` is the pointer the callback received, during the callback; `message` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn pan_token_reply_fail(
    reply: *mut PanTokenReply,
    message: *const c_char,
) -> i32 {
    guard(|| {
        // SAFETY: as documented.
        let reply = unsafe { reply_arg(reply) }?;
        // SAFETY: as documented.
        let message = unsafe { opt_str_arg(message, "message") }?;
        answer(
            reply,
            Err(message.unwrap_or("(no reason given)").to_owned()),
        )
    })
}

/// The reply pointer, checked for NULL.
///
/// # Safety
/// NULL or the pointer a token source received, during its call.
unsafe fn reply_arg<'a>(reply: *mut PanTokenReply) -> Result<&'a PanTokenReply, Error> {
    // SAFETY: as the caller promises.
    unsafe { reply.as_ref() }
        .ok_or_else(|| Error::new(crate::error::Status::NullArgument, "`reply` is NULL"))
}

fn answer(reply: &PanTokenReply, a: Result<(String, i64), String>) -> Result<(), Error> {
    let mut slot = reply
        .answer
        .try_borrow_mut()
        .map_err(|_| Error::invalid("the reply is in use"))?;
    if slot.is_some() {
        return Err(Error::invalid("the reply was already answered"));
    }
    *slot = Some(a);
    Ok(())
}
