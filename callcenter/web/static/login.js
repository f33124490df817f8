// login.js: the sign-in page (index.html). Owns the form: POST /api/auth/login, the
// error shown from the server's `detail` (401 wrong credentials, 423 locked, 429 too many
// tries with a countdown from Retry-After), and going on to the user's page on success: an
// agent to the desk (/agent), a supervisor to the dashboard (/supervisor), QA reviewers and
// administrators to the recordings (/qa; both pages link to each other for those who may use
// both). A user whose session is still good is sent straight on without seeing the form.

import { AGENT_PAGE, ApiError, login, logout, me } from "./js/api.js";

const QA_PAGE = "/qa";
const SUPERVISOR_PAGE = "/supervisor";
// Where each role works; a role not listed here is told it has no page yet.
const HOME = { agent: AGENT_PAGE, qa: QA_PAGE, supervisor: SUPERVISOR_PAGE, admin: QA_PAGE };

const form = document.querySelector('[data-testid="login-form"]');
const username = document.querySelector('[data-testid="login-username"]');
const password = document.querySelector('[data-testid="login-password"]');
const submit = document.querySelector('[data-testid="login-submit"]');
const errorBox = document.querySelector('[data-testid="login-error"]');
const signedIn = document.querySelector('[data-testid="signed-in"]');
const signedInText = document.querySelector('[data-testid="signed-in-text"]');
let lockedUntil = 0;
let countdown = null;

function showError(text) {
  errorBox.textContent = text || "";
}

/** Signed in: on to the role's page (true); a role without one is told so (false). */
function arrive(user) {
  const home = user && Object.hasOwn(HOME, user.role) ? HOME[user.role] : null;
  if (home) {
    location.replace(home);
    return true;
  }
  // Signed in, but with no page here: every page would refuse its requests.
  form.hidden = true;
  signedIn.hidden = false;
  const who = user ? user.display_name || user.username : "someone";
  signedInText.textContent = `You are signed in as ${who} (${user ? user.role : "no role"}). There is no page for this role here yet.`;
  return false;
}

function startCountdown(seconds, message) {
  lockedUntil = Date.now() + seconds * 1000;
  submit.disabled = true;
  clearInterval(countdown);
  const tick = () => {
    const left = Math.ceil((lockedUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(countdown);
      submit.disabled = false;
      showError(`${message} You can try again now.`);
      return;
    }
    showError(`${message} Try again in ${left} s.`);
  };
  tick();
  countdown = setInterval(tick, 1000);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (Date.now() < lockedUntil) return;
  const name = username.value.trim();
  if (!name || !password.value) {
    showError("Enter your username and password.");
    (name ? password : username).focus();
    return;
  }
  showError("");
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  let keepDisabled = false;
  try {
    const answer = await login(name, password.value);
    password.value = "";
    keepDisabled = arrive(answer && answer.user); // stays disabled while the page loads
  } catch (error) {
    const detail = error instanceof ApiError ? error.detail : String(error);
    if (error.status === 429 && error.retryAfter) {
      keepDisabled = true;
      startCountdown(error.retryAfter, detail);
    } else {
      showError(detail);
    }
    password.value = "";
    password.focus();
  } finally {
    submit.removeAttribute("aria-busy");
    if (!keepDisabled) submit.disabled = false;
  }
});

document.querySelector('[data-testid="login-signout"]').addEventListener("click", async () => {
  await logout().catch(() => {});
  signedIn.hidden = true;
  form.hidden = false;
  submit.disabled = Date.now() < lockedUntil;
  username.focus();
});

// Already signed in? Straight on to the user's page.
me().then(
  (session) => arrive(session && session.user),
  () => {},
);
