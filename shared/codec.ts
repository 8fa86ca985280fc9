/**
 * Codec parameters as capture publishes them and clients receive them, plus
 * the little bitstream knowledge zmcast needs: finding parameter sets in
 * Annex-B, turning avcC/hvcC extradata into Annex-B, and WebCodecs codec
 * strings. Video is never decoded here.
 */
export type VideoCodec = 'h264' | 'h265' | 'av1';

export interface CodecConfig {
  codec: VideoCodec;
  /** WebCodecs/MSE codec string, e.g. `avc1.64001F`. */
  codecString: string;
  width: number;
  height: number;
  /** Parameter sets (SPS/PPS, VPS/SPS/PPS) in Annex-B form; empty when unknown. */
  extradata: Buffer;
  generation: number;
}

/** JSON form of CodecConfig (extradata as base64), used in Redis and on the wire. */
export interface CodecConfigJson {
  codec: VideoCodec;
  codec_string: string;
  width: number;
  height: number;
  extradata: string;
  generation: number;
}

export function configToJson(c: CodecConfig): CodecConfigJson {
  return {
    codec: c.codec,
    codec_string: c.codecString,
    width: c.width,
    height: c.height,
    extradata: c.extradata.toString('base64'),
    generation: c.generation,
  };
}

export function configFromJson(j: CodecConfigJson): CodecConfig {
  return {
    codec: j.codec,
    codecString: j.codec_string,
    width: j.width,
    height: j.height,
    extradata: Buffer.from(j.extradata, 'base64'),
    generation: j.generation,
  };
}

export const CONTENT_TYPES: Record<VideoCodec, string> = {
  h264: 'video/h264',
  h265: 'video/h265',
  av1: 'video/av1',
};

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** Splits an Annex-B buffer into NAL units (without start codes). */
export function splitAnnexB(buf: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let i = 0;
  let start = -1;
  while (i + 2 < buf.length) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      if (start >= 0) nals.push(trimZeros(buf.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < buf.length) nals.push(buf.subarray(start));
  return nals.filter((n) => n.length > 0);
}

function trimZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

export function isAnnexB(buf: Buffer): boolean {
  return buf.length >= 4 && buf[0] === 0 && buf[1] === 0 && (buf[2] === 1 || (buf[2] === 0 && buf[3] === 1));
}

export function joinAnnexB(nals: Buffer[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => [START_CODE, n]));
}

function nalType(codec: VideoCodec, nal: Buffer): number {
  return codec === 'h265' ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
}

/** Parameter-set NAL types: H.264 SPS 7, PPS 8; H.265 VPS 32, SPS 33, PPS 34. */
function isParameterSet(codec: VideoCodec, type: number): boolean {
  return codec === 'h265' ? type >= 32 && type <= 34 : type === 7 || type === 8;
}

/** The parameter sets found inline in an Annex-B keyframe, as Annex-B. */
export function parameterSetsOf(codec: VideoCodec, annexB: Buffer): Buffer {
  if (codec === 'av1') return Buffer.alloc(0);
  return joinAnnexB(splitAnnexB(annexB).filter((n) => isParameterSet(codec, nalType(codec, n))));
}

/**
 * Extradata as Annex-B. FFmpeg gives Annex-B for RTSP/TS sources and
 * avcC/hvcC (ISO BMFF) for MP4/MKV ones; clients get one form only.
 */
export function extradataToAnnexB(codec: VideoCodec, extradata: Buffer): Buffer {
  if (extradata.length === 0 || isAnnexB(extradata) || codec === 'av1') return extradata;
  if (codec === 'h264' && extradata[0] === 1) return avcCToAnnexB(extradata);
  if (codec === 'h265' && extradata.length > 23) return hvcCToAnnexB(extradata);
  return extradata;
}

function avcCToAnnexB(avcc: Buffer): Buffer {
  const nals: Buffer[] = [];
  let off = 5;
  const numSps = avcc[off++] & 0x1f;
  for (let i = 0; i < numSps && off + 2 <= avcc.length; i++) {
    const len = avcc.readUInt16BE(off);
    nals.push(avcc.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  const numPps = avcc[off++];
  for (let i = 0; i < numPps && off + 2 <= avcc.length; i++) {
    const len = avcc.readUInt16BE(off);
    nals.push(avcc.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return joinAnnexB(nals);
}

function hvcCToAnnexB(hvcc: Buffer): Buffer {
  const nals: Buffer[] = [];
  let off = 22;
  const numArrays = hvcc[off++];
  for (let a = 0; a < numArrays && off + 3 <= hvcc.length; a++) {
    off += 1;
    const count = hvcc.readUInt16BE(off);
    off += 2;
    for (let i = 0; i < count && off + 2 <= hvcc.length; i++) {
      const len = hvcc.readUInt16BE(off);
      nals.push(hvcc.subarray(off + 2, off + 2 + len));
      off += 2 + len;
    }
  }
  return joinAnnexB(nals);
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');

/**
 * The WebCodecs codec string. For H.264 it comes straight from the SPS
 * (profile_idc, constraint flags, level_idc); for H.265 from the profile and
 * level FFmpeg reports.
 */
export function codecString(
  codec: VideoCodec,
  parameterSets: Buffer,
  hint: { profile?: number; level?: number } = {},
): string {
  if (codec === 'h264') {
    const sps = splitAnnexB(parameterSets).find((n) => (n[0] & 0x1f) === 7);
    if (sps && sps.length >= 4) return `avc1.${hex2(sps[1])}${hex2(sps[2])}${hex2(sps[3])}`;
    return 'avc1.42E01E';
  }
  if (codec === 'h265') {
    const profile = hint.profile && hint.profile > 0 ? hint.profile : 1;
    const level = hint.level && hint.level > 0 ? hint.level : 93;
    return `hev1.${profile}.6.L${level}.B0`;
  }
  return 'av01.0.08M.08';
}
