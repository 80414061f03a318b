const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;
const two = (s: string, i: number): number => digit(s, i) * 10 + digit(s, i + 1);

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const isDigit = (s: string, i: number): boolean => {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
};

/** The digit positions of `YYYY-MM-DDTHH:MM:SS.sssZ`, checked without allocating (called per event). */
const allDigits = (s: string): boolean =>
  isDigit(s, 0) &&
  isDigit(s, 1) &&
  isDigit(s, 2) &&
  isDigit(s, 3) &&
  isDigit(s, 5) &&
  isDigit(s, 6) &&
  isDigit(s, 8) &&
  isDigit(s, 9) &&
  isDigit(s, 11) &&
  isDigit(s, 12) &&
  isDigit(s, 14) &&
  isDigit(s, 15) &&
  isDigit(s, 17) &&
  isDigit(s, 18) &&
  isDigit(s, 20) &&
  isDigit(s, 21) &&
  isDigit(s, 22);

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The ISO 8601 / RFC 3339 forms taken besides `toISOString()`'s: a date (four-digit year, or the
 * six-digit signed one `toISOString()` writes past 9999), or a date and time (`T` or a space, seconds
 * and any fraction optional) with `Z`, an offset, or no zone — read as UTC, not as the server's local
 * time, which is what `Date.parse` would do. Anything else (RFC 2822, "Nov 27 2026"…), which
 * `Date.parse` would also take, is not ISO 8601 and is refused.
 */
const OTHER_ISO =
  /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/** Whether a year, month and day name a day of the proleptic Gregorian calendar (`Date.parse` rolls February 30th over). */
const isDay = (year: number, month: number, day: number): boolean =>
  month >= 1 &&
  month <= 12 &&
  day >= 1 &&
  day <= (DAYS_IN_MONTH[month - 1] as number) &&
  (month !== 2 || day <= 28 || (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)));

/**
 * Epoch ms of an ISO 8601 date-time; NaN when it is not one. Clients send `toISOString()` output
 * (`2026-11-20T10:00:01.000Z`), parsed here without `Date.parse`, which is much slower per event; the
 * other ISO forms (`OTHER_ISO`) go through `Date.parse`. Impossible dates (February 30th) are NaN.
 */
export function parseIsoTime(value: unknown): number {
  if (typeof value !== 'string') return Number.NaN;
  if (
    value.length === 24 &&
    value.charCodeAt(4) === 45 && // -
    value.charCodeAt(7) === 45 &&
    value.charCodeAt(10) === 84 && // T
    value.charCodeAt(13) === 58 && // :
    value.charCodeAt(16) === 58 &&
    value.charCodeAt(19) === 46 && // .
    value.charCodeAt(23) === 90 // Z
  ) {
    const year = two(value, 0) * 100 + two(value, 2);
    const month = two(value, 5);
    const day = two(value, 8);
    const hour = two(value, 11);
    const minute = two(value, 14);
    const second = two(value, 17);
    const ms = digit(value, 20) * 100 + two(value, 21);
    if (
      allDigits(value) &&
      month >= 1 &&
      month <= 12 &&
      day >= 1 &&
      day <= (DAYS_IN_MONTH[month - 1] as number) &&
      (month !== 2 || day <= 28 || year % 4 === 0) &&
      (month !== 2 || day !== 29 || year % 100 !== 0 || year % 400 === 0) &&
      hour < 24 &&
      minute < 60 &&
      second < 60
    )
      return (
        daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms
      );
    // The exact shape of toISOString() with an impossible date (Date.parse would roll it over); a leap
    // second (RFC 3339's :60) is read below.
    if (second !== 60) return Number.NaN;
  }
  return otherIsoTime(value);
}

/** `parseIsoTime` for the forms of `OTHER_ISO`: not per event for senders that use `toISOString()`. */
function otherIsoTime(value: string): number {
  const iso = OTHER_ISO.exec(value);
  if (!iso) return Number.NaN;
  const [, year, month, day, hourMinute, second, fraction, zone] = iso;
  if (!isDay(Number(year), Number(month), Number(day))) return Number.NaN;
  const date = `${year}-${month}-${day}`;
  if (hourMinute === undefined) return Date.parse(date);
  // Date.parse wants "T", an uppercase Z and a colon in the offset; a time without a zone is UTC here.
  const offset =
    zone === undefined || zone.toUpperCase() === 'Z'
      ? 'Z'
      : zone.length === 5
        ? `${zone.slice(0, 3)}:${zone.slice(3)}`
        : zone.length === 3
          ? `${zone}:00`
          : zone;
  // A leap second (23:59:60, RFC 3339 allows it) is the second after :59, as POSIX clocks count it.
  const leap = second === '60';
  // Milliseconds are all a timestamp keeps: further digits (nanoseconds, or more) are cut.
  const time = `${hourMinute}:${leap ? '59' : (second ?? '00')}${fraction?.slice(0, 4) ?? ''}`;
  const ms = Date.parse(`${date}T${time}${offset}`);
  return leap ? ms + 1000 : ms;
}
