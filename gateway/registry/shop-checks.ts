/**
 * The checks of a shop record that catch what a person gets wrong when typing it in from a
 * spreadsheet: a phone number that is not one, coordinates that are not in China (or are, once lat
 * and lon are swapped back). Pure functions: each returns what is wrong, in the installer's
 * language, or null; `checkShop` (registry.ts) names the flag and throws.
 */
import { tr } from '../i18n.js';

/** Optional +86 / 86 / 0086, then a separator or none. */
const COUNTRY = String.raw`(?:(?:\+|00)?86[ -]?)?`;
/** A mainland mobile: 11 digits from 13–19, in groups of 3-4-4 with optional spaces or dashes. */
const MOBILE = new RegExp(String.raw`^${COUNTRY}1[3-9]\d[ -]?\d{4}[ -]?\d{4}$`);
/**
 * A landline: area code (0 and 2–3 digits, optionally in brackets), a 7–8 digit number that never
 * starts with 0, and an optional extension (-123, ext 123, x123, 转123).
 */
const LANDLINE = /^(?:0[1-9]\d{1,2}[ -]?|\(0[1-9]\d{1,2}\) ?)[1-9]\d{6,7}(?: ?(?:-|ext\.?|x|转) ?\d{1,6})?$/i;

export const PHONE_EXAMPLES = '13800138000 or 020-12345678';

export function isPhoneNumber(value: string): boolean {
  const v = value.trim();
  return MOBILE.test(v) || LANDLINE.test(v);
}

/** What is wrong with a phone number, or null when it is a mainland mobile or landline number. */
export function phoneProblem(value: string): string | null {
  if (isPhoneNumber(value)) return null;
  const digits = value.replace(/\D/g, '');
  // The usual slips, named; anything else gets the two accepted forms.
  if (/^[2-9]\d{6,7}$/.test(digits)) {
    return tr(`${value} has no area code: a landline is written with it, e.g. 0754-88881234 (accepted: ${PHONE_EXAMPLES})`, `${value} 缺少区号：固定电话须带区号，例如 0754-88881234（可接受：${PHONE_EXAMPLES}）`);
  }
  if (/^1\d{10}$/.test(digits) && !/^1[3-9]/.test(digits)) {
    return tr(`${value} is no mobile number: a mobile starts with 13–19 (accepted: ${PHONE_EXAMPLES})`, `${value} 不是手机号码：手机号以 13–19 开头（可接受：${PHONE_EXAMPLES}）`);
  }
  return tr(`${value} is not a mainland mobile or landline number (accepted: ${PHONE_EXAMPLES})`, `${value} 不是大陆手机或固定电话号码（可接受：${PHONE_EXAMPLES}）`);
}

/** China's bounding box, roughly (Zengmu Reef to Mohe, Pamirs to the Wusuli). */
export const CHINA_BOUNDS = { lat: { min: 3.8, max: 53.6 }, lon: { min: 73.5, max: 135.1 } } as const;

export function inChina(lat: number, lon: number): boolean {
  const { lat: la, lon: lo } = CHINA_BOUNDS;
  return lat >= la.min && lat <= la.max && lon >= lo.min && lon <= lo.max;
}

export interface CoordinateProblem {
  /** The flag to blame: --lat, --lon, or --lat when both are out (or swapped). */
  flag: '--lat' | '--lon';
  message: string;
}

/** What is wrong with a shop's coordinates, or null when they are in China. */
export function coordinatesProblem(lat: number, lon: number): CoordinateProblem | null {
  if (inChina(lat, lon)) return null;
  if (inChina(lon, lat)) {
    return {
      flag: '--lat',
      message: tr(
        `did you swap --lat and --lon? ${lat}, ${lon} fits as --lat ${lon} --lon ${lat}`,
        `是否把 --lat 和 --lon 写反了？${lat}, ${lon} 应写成 --lat ${lon} --lon ${lat}`,
      ),
    };
  }
  const { lat: la, lon: lo } = CHINA_BOUNDS;
  const latOut = lat < la.min || lat > la.max;
  const bounds = `latitude ${la.min}–${la.max}, longitude ${lo.min}–${lo.max}`;
  const boundsZh = `纬度 ${la.min}–${la.max}，经度 ${lo.min}–${lo.max}`;
  return {
    flag: latOut ? '--lat' : '--lon',
    message: tr(`${lat}, ${lon} is outside China (${bounds}; WGS-84 degrees as GPS gives them)`, `${lat}, ${lon} 不在中国境内（${boundsZh}；GPS 给出的 WGS-84 度数）`),
  };
}
