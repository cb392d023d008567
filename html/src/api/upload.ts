// Multipart uploads with progress, through XMLHttpRequest (fetch cannot
// report upload progress).
//
// The multipart body is assembled here as a Blob rather than a FormData, so
// the byte range of every file inside the request is known exactly: the
// request's single upload-progress figure then splits into one figure per
// file. The Blob references the File objects, so nothing is read into memory.
//
// Errors are the ones `request` throws: ApiError with the server's
// `error.message`, status 0 when the server cannot be reached, and an
// AbortError DOMException when the caller aborts.

import {
  ApiError,
  buildUrl,
  getAccessToken,
  parseResponse,
  recoverUnauthorized,
} from './client';

/** A file part: a Blob with a name (a File, or a Blob named by the caller). */
export interface NamedBlob {
  readonly name: string;
  readonly size: number;
  readonly type: string;
}

export interface ByteRange {
  /** Offset of the file's first byte within the body. */
  start: number;
  /** Offset just after its last byte. */
  end: number;
}

export interface MultipartBody {
  body: Blob;
  contentType: string;
  /** Where each file's content lies in `body`, in the order given. */
  ranges: ByteRange[];
}

const encoder = new TextEncoder();

function byteLength(s: string): number {
  return encoder.encode(s).length;
}

/**
 * A filename as a quoted-string parameter: backslash and double quote are
 * escaped, line breaks (which would end the header) become spaces.
 */
export function quoteFilename(name: string): string {
  return `"${name.replace(/[\r\n]/g, ' ').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function randomBoundary(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `----AvatarAdamUpload${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** A multipart/form-data body with every file under the field `field`. */
export function buildMultipart(
  files: ReadonlyArray<Blob & NamedBlob>,
  field = 'files',
  boundary = randomBoundary(),
): MultipartBody {
  const parts: BlobPart[] = [];
  const ranges: ByteRange[] = [];
  let offset = 0;

  for (const file of files) {
    const type = (file.type || 'application/octet-stream').replace(/[\r\n]/g, '');
    const head =
      `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="${field}"; filename=${quoteFilename(file.name)}\r\n` +
      `Content-Type: ${type}\r\n\r\n`;
    parts.push(head, file, '\r\n');
    offset += byteLength(head);
    ranges.push({ start: offset, end: offset + file.size });
    offset += file.size + 2;
  }
  parts.push(`--${boundary}--\r\n`);

  return {
    body: new Blob(parts),
    contentType: `multipart/form-data; boundary=${boundary}`,
    ranges,
  };
}

/** Fraction (0–1) of each file sent once `loaded` bytes of the body are. */
export function fileProgress(loaded: number, ranges: readonly ByteRange[]): number[] {
  return ranges.map(({ start, end }) => {
    if (end <= start) return loaded >= end ? 1 : 0;
    return Math.min(1, Math.max(0, (loaded - start) / (end - start)));
  });
}

// ---------------------------------------------------------------------------
// Sending

/** The part of XMLHttpRequest used here (a fake one in tests). */
export interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: Blob): void;
  abort(): void;
  getResponseHeader(name: string): string | null;
  readonly status: number;
  readonly responseText: string;
  readonly upload: { onprogress: ((ev: ProgressEvent) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  ontimeout: (() => void) | null;
}

let xhrFactory: () => XhrLike = () => new XMLHttpRequest() as unknown as XhrLike;

/** For tests: replace XMLHttpRequest (null restores it). */
export function setXhrFactory(factory: (() => XhrLike) | null): void {
  xhrFactory = factory ?? (() => new XMLHttpRequest() as unknown as XhrLike);
}

export interface SendOptions {
  /** Bytes of the body sent so far, and the body's size. */
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
}

function abortError(): DOMException {
  return new DOMException('The upload was cancelled.', 'AbortError');
}

/** One attempt: resolves with the answer as a Response (any status). */
function sendOnce(
  url: string,
  multipart: MultipartBody,
  token: string | null,
  options: SendOptions,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError());
      return;
    }
    const xhr = xhrFactory();
    const onAbortSignal = () => xhr.abort();
    const finish = () => options.signal?.removeEventListener('abort', onAbortSignal);

    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', multipart.contentType);
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);

    const total = multipart.body.size;
    xhr.upload.onprogress = (ev) => {
      options.onProgress?.(Math.min(ev.loaded, total), total);
    };
    xhr.onload = () => {
      finish();
      const status = xhr.status;
      if (status < 200 || status > 599) {
        reject(unreachable());
        return;
      }
      options.onProgress?.(total, total);
      const headers = new Headers();
      for (const name of ['Content-Type', 'Retry-After']) {
        const value = xhr.getResponseHeader(name);
        if (value !== null) headers.set(name, value);
      }
      const noBody = status === 204 || status === 205 || status === 304;
      resolve(new Response(noBody ? null : xhr.responseText, { status, headers }));
    };
    xhr.onerror = () => {
      finish();
      reject(unreachable());
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      finish();
      reject(abortError());
    };
    options.signal?.addEventListener('abort', onAbortSignal);
    xhr.send(multipart.body);
  });
}

function unreachable(): ApiError {
  return new ApiError('Could not reach the server. Check your connection and try again.', {
    status: 0,
  });
}

/**
 * POST a multipart body to `path` (relative to the API base, as for
 * `request`) with the in-memory access token. A 401 goes through the same
 * refresh-on-401 hook as `request` and is retried once with the new token.
 * Resolves to the parsed JSON answer; rejects like `request`.
 */
export async function sendMultipart<T>(
  path: string,
  multipart: MultipartBody,
  options: SendOptions = {},
): Promise<T> {
  const url = buildUrl(path);
  const token = getAccessToken();
  let response = await sendOnce(url, multipart, token, options);
  if (response.status === 401 && token && (await recoverUnauthorized(token))) {
    options.onProgress?.(0, multipart.body.size);
    response = await sendOnce(url, multipart, getAccessToken(), options);
  }
  return parseResponse<T>(response);
}
