/** The URL checks of the settings that name a server to call (webhooks, the publish hook, a JWKS, the CLI's --url). */

/** Whether `url` is an http(s) URL (with no whitespace in it). */
export function isHttpUrl(url: string): boolean {
  return /^https?:\/\/[^\s]+$/.test(url);
}

/**
 * Whether `url` carries a user or a password (`https://user:pass@host/`): fetch refuses to send such a request,
 * and the URL would show its password in every failure logged.
 */
export function hasCredentials(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);
}
