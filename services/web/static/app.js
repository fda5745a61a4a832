/*
 * failwhale desktop page: the browser side of the lab's web client.
 *
 * It replays what twitter.com did on every page view in December 2022: get a fresh token
 * (a guest token, or a check of the stored user session), then fire every API call of the
 * page at once, and render only if ALL of them succeed. One failed call anywhere shows the
 * generic "Something went wrong" page. Which calls a page makes comes from the manifest the
 * web service embeds (services/web/pages.yaml); nothing here hard-codes that list, so this
 * page and the tools that read GET /pages.json always agree.
 *
 * Test hooks: <body data-state="loading|ready|error"> and data-session="guest|user".
 */
"use strict";

const TOKEN_KEY = "failwhale.token";
const USER_KEY = "failwhale.user";
const PAGE = "home";
const MAX_TWEET = 280;

const $ = (id) => document.getElementById(id);

let manifest = null;
// Each page view takes a number; an older view that finishes late must not overwrite a newer one.
let currentView = 0;
// Tweets this tab posted, kept until the timeline shows them: the timeline service caches each
// home timeline for a few seconds, and a poster must still see their own tweet at once.
let ownTweets = [];
const OWN_TWEET_KEEP_S = 60;

class ApiError extends Error {
  constructor(call, status, message) {
    super(message);
    this.call = call;
    this.status = status; // 0: no HTTP answer at all
  }
}

/* ---------- API ---------- */

function apiMessage(data) {
  const first = data && Array.isArray(data.errors) && data.errors[0];
  return first && typeof first.message === "string" ? first.message : null;
}

/** One manifest call. Resolves with the JSON body of a 2xx answer; anything else throws ApiError. */
async function callApi(call, { token, body } = {}) {
  const url = new URL(call.path, location.origin);
  for (const [k, v] of Object.entries(call.query || {})) url.searchParams.set(k, v);
  // X-Client lets every tier's metrics split web traffic from app traffic.
  const headers = { "X-Client": "web", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url, {
      method: call.method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", // the site keeps no API cache: every view must reach the API
    });
  } catch (e) {
    throw new ApiError(call.name, 0, "Could not reach failwhale. Check your connection.");
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    throw new ApiError(call.name, resp.status, apiMessage(data) || `Request failed (HTTP ${resp.status})`);
  }
  if (data === null) throw new ApiError(call.name, resp.status, "The server sent an unreadable answer");
  return data;
}

/* ---------- session (localStorage) ---------- */

const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  get user() { return localStorage.getItem(USER_KEY); },
  save(token, user) {
    localStorage.setItem(TOKEN_KEY, token);
    if (user) localStorage.setItem(USER_KEY, user);
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  },
};

/* ---------- page view ---------- */

/**
 * Run the page's manifest sequence once: session step, then every call in parallel.
 * Returns the answers keyed by call name.
 */
async function loadPage(page) {
  let token = session.token;
  if (token) {
    try {
      // The session stays stored; each view gets a fresh access token for its calls.
      const me = await callApi(page.session.user, { token });
      if (me.screen_name) session.save(token, me.screen_name);
      token = me.access_token;
      if (!token) throw new ApiError(page.session.user.name, 200, "No access token in the answer");
    } catch (e) {
      // 401 means the session is gone (expired, or auth restarted); a newer login may have
      // stored another token meanwhile, and that one must survive.
      if (e.status === 401 && session.token === token) session.clear();
      throw e;
    }
  } else {
    const guest = await callApi(page.session.guest);
    token = guest.guest_token;
    if (!token) throw new ApiError(page.session.guest.name, 200, "No guest token in the answer");
  }
  const answers = await Promise.all(page.calls.map((call) => callApi(call, { token })));
  return Object.fromEntries(page.calls.map((call, i) => [call.name, answers[i]]));
}

async function pageView() {
  const view = ++currentView;
  const page = manifest.pages[PAGE];
  document.title = `${page.title} / failwhale`;
  $("page-title").textContent = page.title;
  setState("loading");
  try {
    const data = await loadPage(page);
    if (view !== currentView) return;
    render(data);
    setState("ready");
  } catch (e) {
    if (view !== currentView) return;
    console.warn(`page view failed at ${e.call || "render"}:`, e);
    setState("error");
  }
}

function setState(state) {
  document.body.dataset.state = state;
  const error = state === "error";
  $("loading").hidden = state !== "loading";
  $("error-box").hidden = !error;
  if (error) {
    $("error").textContent = manifest ? manifest.error_message : $("error").textContent;
    // The error page shows nothing of the page: no half-rendered timeline next to the apology.
    for (const id of ["timeline", "notification-list", "trend-list"]) $(id).replaceChildren();
    for (const id of ["notification-empty", "trend-empty", "notification-count"]) $(id).hidden = true;
  }
  renderSession(error);
}

/* ---------- rendering ---------- */

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function relativeTime(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 5) return "now";
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return new Date(epochSeconds * 1000).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function timeEl(epochSeconds) {
  const t = el("time", "time", relativeTime(epochSeconds));
  const date = new Date(epochSeconds * 1000);
  t.dateTime = date.toISOString();
  t.title = date.toLocaleString();
  return t;
}

// Hashtags are highlighted with text nodes only: tweet text is user input and never becomes HTML.
function tweetText(text) {
  const p = el("p", "tweet-text");
  let last = 0;
  for (const m of text.matchAll(/#\w+/g)) {
    p.append(text.slice(last, m.index), el("span", "hashtag", m[0]));
    last = m.index + m[0].length;
  }
  p.append(text.slice(last));
  return p;
}

function avatar(user) {
  let hash = 0;
  for (const ch of String(user)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const a = el("span", "avatar", String(user).replace(/^user0*/, "").slice(0, 2) || "?");
  // Spread by the golden angle so user0001 and user0002 do not get near-identical colours.
  a.style.background = `hsl(${(hash * 137.5) % 360} 55% 48%)`;
  a.setAttribute("aria-hidden", "true");
  return a;
}

function withOwnTweets(tweets) {
  const shown = new Set(tweets.map((t) => t.id));
  const now = Date.now() / 1000;
  ownTweets = ownTweets.filter((t) => !shown.has(t.id) && now - t.created_at < OWN_TWEET_KEEP_S);
  return [...ownTweets, ...tweets];
}

function renderTimeline(data) {
  const items = withOwnTweets(data.tweets).map((t) => {
    const li = el("li", "tweet");
    li.dataset.id = t.id;
    const body = el("div", "tweet-body");
    const head = el("div", "tweet-head");
    head.append(el("span", "tweet-user", `@${t.user}`), el("span", "dot", "·"), timeEl(t.created_at));
    body.append(head, tweetText(t.text));
    li.append(avatar(t.user), body);
    return li;
  });
  if (!items.length) items.push(el("li", "muted empty", "No tweets yet."));
  $("timeline").replaceChildren(...items);
}

const NOTIFICATION_TEXT = {
  like: "liked your tweet",
  follow: "followed you",
  retweet: "retweeted your tweet",
  mention: "mentioned you",
};
const NOTIFICATIONS_SHOWN = 8;

function renderNotifications(data) {
  const list = data.notifications;
  const count = $("notification-count");
  count.textContent = String(list.length);
  count.hidden = list.length === 0;
  const items = list.slice(0, NOTIFICATIONS_SHOWN).map((n) => {
    const li = el("li", `notification kind-${n.kind}`);
    li.append(el("strong", "", `@${n.from}`), ` ${NOTIFICATION_TEXT[n.kind] || n.kind} `, timeEl(n.at));
    return li;
  });
  if (list.length > NOTIFICATIONS_SHOWN) items.push(el("li", "muted", `and ${list.length - NOTIFICATIONS_SHOWN} more`));
  $("notification-list").replaceChildren(...items);
  const empty = $("notification-empty");
  empty.textContent = data.user ? "Nothing new." : "Log in to see your notifications.";
  empty.hidden = list.length > 0;
}

function renderTrends(data) {
  const items = data.trends.map((t) => {
    const li = el("li", "trend");
    li.append(el("span", "trend-name", t.name), el("span", "muted", `${t.tweet_volume} ${t.tweet_volume === 1 ? "tweet" : "tweets"}`));
    return li;
  });
  $("trend-list").replaceChildren(...items);
  $("trend-empty").hidden = items.length > 0;
}

function renderAccount(data) {
  $("session-name").textContent = data.guest ? "" : data.name || "";
}

// Keyed by manifest call name. A call the page does not display is still made (the manifest
// decides the traffic); a renderer whose call is missing simply does not run.
const RENDERERS = {
  home_timeline: renderTimeline,
  account: renderAccount,
  notifications: renderNotifications,
  trends: renderTrends,
};

function render(data) {
  for (const [name, fn] of Object.entries(RENDERERS)) if (data[name]) fn(data[name]);
}

function renderSession(isError = false) {
  const loggedIn = Boolean(session.token);
  document.body.dataset.session = loggedIn ? "user" : "guest";
  $("session-user-box").hidden = !loggedIn;
  $("session-user").textContent = loggedIn ? `@${session.user || "you"}` : "";
  $("login-form").hidden = loggedIn;
  $("compose").hidden = !loggedIn || isError;
}

/* ---------- actions ---------- */

function showFormError(id, message) {
  $(id).textContent = message || "";
  $(id).hidden = !message;
}

async function withBusy(form, fn) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await fn();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    updateCounter();
  }
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  showFormError("login-error", "");
  await withBusy(form, async () => {
    try {
      const answer = await callApi(manifest.actions.login, {
        body: { username: form.elements.username.value.trim(), password: form.elements.password.value },
      });
      session.save(answer.token, answer.user && answer.user.screen_name);
      form.reset();
    } catch (e) {
      showFormError("login-error", e.message);
      return;
    }
    pageView();
  });
}

async function onLogout() {
  const token = session.token;
  $("logout").disabled = true;
  try {
    await callApi(manifest.actions.logout, { token });
  } catch (e) {
    // The user asked to leave: forget the token here even if the API could not revoke it.
    console.warn("logout failed:", e);
  } finally {
    $("logout").disabled = false;
  }
  if (session.token === token) session.clear();
  ownTweets = [];
  $("session-name").textContent = "";
  showFormError("compose-error", "");
  pageView();
}

// Counted in code points, as the tweets service (Python len) counts them; .length would
// count an emoji twice.
const tweetLength = (text) => [...text].length;

function updateCounter() {
  const text = $("compose").elements.text.value;
  const left = MAX_TWEET - tweetLength(text);
  const count = $("compose-count");
  count.textContent = String(left);
  count.classList.toggle("warn", left < 20 && left >= 0);
  count.classList.toggle("over", left < 0);
  $("compose").querySelector("button").disabled = left < 0 || !text.trim();
}

async function onCompose(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const text = form.elements.text.value;
  if (!text.trim() || tweetLength(text) > MAX_TWEET) return;
  showFormError("compose-error", "");
  await withBusy(form, async () => {
    try {
      const tweet = await callApi(manifest.actions.post_tweet, { token: session.token, body: { text } });
      ownTweets.unshift(tweet);
    } catch (e) {
      showFormError("compose-error", e.message);
      return;
    }
    form.reset();
    pageView();
  });
}

/* ---------- start ---------- */

function start() {
  try {
    manifest = JSON.parse($("page-manifest").textContent);
  } catch (e) {
    // Without a manifest the page cannot know what to call; the error text is already in
    // the HTML, and only a full reload can bring a new manifest.
    console.error("page manifest is unreadable:", e);
    document.body.dataset.state = "error";
    $("loading").hidden = true;
    $("error-box").hidden = false;
    $("retry").addEventListener("click", () => location.reload());
    return;
  }
  $("retry").addEventListener("click", () => pageView());
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("compose").addEventListener("submit", onCompose);
  $("compose").elements.text.addEventListener("input", updateCounter);
  updateCounter();
  pageView();
}

start();
