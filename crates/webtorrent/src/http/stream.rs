//! `GET /stream/{info_hash}/{index}` and `GET /files/{info_hash}/{*path}`: a torrent's file
//! as it downloads, with `Range`, `If-Range` and `HEAD`.

use std::io::{self, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::range::{ByteRange, parse_range};
use super::{ApiError, Shared};
use crate::session::{File, FileReader, Torrent};

/// The most bytes one chunk of a response body carries.
const BODY_CHUNK: usize = 64 * 1024;

/// Query parameters of a stream URL.
#[derive(Debug, serde::Deserialize)]
pub(super) struct StreamQuery {
    /// Ask the browser to save the file rather than show it.
    #[serde(default)]
    download: Option<String>,
}

pub(super) async fn by_index(
    State(shared): State<Arc<Shared>>,
    Path((info_hash, index)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "a file index is a number"))?;
    wait_metadata(&shared, &torrent).await?;
    let file = torrent
        .file(index)
        .filter(|f| !is_pad(&torrent, f.index()))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such file in the torrent"))?;
    serve(&shared, &file, &method, &headers, &query).await
}

pub(super) async fn by_path(
    State(shared): State<Arc<Shared>>,
    Path((info_hash, path)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let torrent = shared.find(&info_hash)?;
    wait_metadata(&shared, &torrent).await?;
    // Matched against the torrent's own paths only: nothing of the request reaches the
    // file system.
    let file = torrent
        .files()
        .into_iter()
        .find(|f| {
            let mut parts: Vec<&str> = f
                .path()
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect();
            let whole = parts.join("/");
            // A multi-file torrent's paths start with its name: accepted with or without.
            if whole == path {
                return true;
            }
            if parts.len() > 1 {
                parts.remove(0);
                return parts.join("/") == path;
            }
            false
        })
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such file in the torrent"))?;
    serve(&shared, &file, &method, &headers, &query).await
}

fn is_pad(torrent: &Torrent, index: usize) -> bool {
    torrent
        .metainfo()
        .and_then(|m| m.info().files().get(index).map(|f| f.is_pad()))
        .unwrap_or(true)
}

/// Waits for a magnet link's metadata, at most the configured time.
async fn wait_metadata(shared: &Shared, torrent: &Torrent) -> Result<(), ApiError> {
    if torrent.metainfo().is_some() {
        return Ok(());
    }
    match tokio::time::timeout(shared.config.first_byte_timeout, torrent.wait_metadata()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::new(StatusCode::GONE, "the torrent has stopped")),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "the torrent's metadata has not arrived yet",
        )),
    }
}

/// The entity tag of a file: its torrent, index and length never change.
fn etag(torrent: &Torrent, file: &File) -> String {
    format!(
        "\"{}-{}-{}\"",
        torrent_hex(torrent),
        file.index(),
        file.length()
    )
}

fn torrent_hex(torrent: &Torrent) -> String {
    torrent.info_hash().to_hex()
}

async fn serve(
    shared: &Shared,
    file: &File,
    method: &Method,
    headers: &HeaderMap,
    query: &StreamQuery,
) -> Result<Response, ApiError> {
    let torrent = file_torrent(shared, file)?;
    let length = file.length();
    let tag = etag(&torrent, file);
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // If-Range: the range holds only for the entity it names; a date or another tag gets
    // the whole file.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == tag));
    let range = match range_header {
        Some(r) if if_range_ok => parse_range(r, length),
        _ => ByteRange::Full,
    };
    let (status, start, end) = match range {
        ByteRange::Full => (StatusCode::OK, 0, length),
        ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        ByteRange::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is malformed or outside the file's {length} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let mut out = HeaderMap::new();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file.name())),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        out.insert(header::ETAG, v);
    }
    // The file's bytes come from strangers: never let a browser run them on this origin.
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{length}", end - 1))
    {
        out.insert(header::CONTENT_RANGE, v);
    }
    let disposition = if query.download.is_some() {
        "attachment"
    } else {
        "inline"
    };
    if let Ok(v) = HeaderValue::from_str(&content_disposition(disposition, file.name())) {
        out.insert(header::CONTENT_DISPOSITION, v);
    }
    if method == Method::HEAD || start == end {
        return Ok((status, out, Body::empty()).into_response());
    }
    // The first bytes are waited for here, so that a torrent that cannot deliver them
    // gets an error status rather than a response that never starts.
    let mut reader = file.reader();
    reader
        .seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let first = match tokio::time::timeout(
        shared.config.first_byte_timeout,
        read_chunk(&mut reader, end - start),
    )
    .await
    {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => {
            return Err(ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()));
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the file's first bytes have not arrived yet",
            ));
        }
    };
    let left = end - start - first.len() as u64;
    let body = futures_util::stream::unfold(
        (Some(first), reader, left, shared.config.stall_timeout),
        |(first, mut reader, left, stall)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (None, reader, left, stall)));
            }
            if left == 0 {
                return None;
            }
            let chunk = match tokio::time::timeout(stall, read_chunk(&mut reader, left)).await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => return Some((Err(e), (None, reader, 0, stall))),
                Err(_) => {
                    let e = io::Error::new(io::ErrorKind::TimedOut, "no data arrived in time");
                    return Some((Err(e), (None, reader, 0, stall)));
                }
            };
            let n = chunk.len() as u64;
            Some((Ok(chunk), (None, reader, left - n, stall)))
        },
    );
    Ok((status, out, Body::from_stream(body)).into_response())
}

/// The torrent of a file, as the server knows it.
fn file_torrent(shared: &Shared, file: &File) -> Result<Torrent, ApiError> {
    shared.find(&torrent_hex(file.torrent()))
}

/// Reads the next bytes, at most [`BODY_CHUNK`] and `left`; an early end of the file is
/// an error.
async fn read_chunk(reader: &mut FileReader, left: u64) -> io::Result<Bytes> {
    let want = usize::try_from(left).unwrap_or(usize::MAX).min(BODY_CHUNK);
    let mut buf = vec![0; want];
    let n = reader.read(&mut buf).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

/// `Content-Disposition` with the file's name: an ASCII fallback and the UTF-8 name
/// (RFC 6266).
fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The media type of a file by its extension. Formats a browser would run as a page or a
/// script are served as bytes.
pub(super) fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "ogv" => "video/ogg",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "ts" => "video/mp2t",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "nfo" | "md" => "text/plain; charset=utf-8",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        "json" => "application/json",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_names() {
        assert_eq!(content_type("Movie.MP4"), "video/mp4");
        assert_eq!(content_type("page.html"), "application/octet-stream");
        assert_eq!(content_type("image.svg"), "application/octet-stream");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(
            content_disposition("inline", "a \"b\"é.mp4"),
            "inline; filename=\"a _b__.mp4\"; filename*=UTF-8''a%20%22b%22%C3%A9.mp4"
        );
    }
}
