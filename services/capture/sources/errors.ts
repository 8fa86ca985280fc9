/** Typed source errors; `code` is stable and ends up in capture events and logs. */
export class SourceConfigError extends Error {
  readonly code = 'bad_source';
}

export class UnsupportedSourceError extends Error {
  readonly code = 'unsupported_source';
}

export class SourceReadError extends Error {
  readonly code = 'source_read_failed';
}

export class SourceClosedError extends Error {
  readonly code = 'source_closed';
  constructor() {
    super('source closed');
  }
}
