// Login and sign-up for both pages. The token lives in sessionStorage: one per tab (two tabs can
// be two users), gone when the tab closes, and kept across a reload of the same tab.
import { Api, ApiError, type PublicUser } from "../../client/rest.ts";
import { byId, byTestId, setText } from "./dom.ts";

const KEY = "kabar.token";
export const api = new Api("/api/v1");

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
  api.token = undefined;
}

const words = (e: unknown): string =>
  e instanceof ApiError ? e.detail : "Something went wrong; try again.";

/**
 * Shows the login form until someone logs in (or a stored token still works), then calls
 * `enter` with the user. `logout` returns to the form.
 */
export function session(enter: (me: PublicUser) => void, leave: () => void): void {
  const login = byId("login");
  const logout = byId<HTMLButtonElement>("logout");
  const show = (me: PublicUser) => {
    login.hidden = true;
    logout.hidden = false;
    setText(byTestId("me"), me.full_name?.trim() || me.email);
    enter(me);
  };
  const ask = () => {
    login.hidden = false;
    logout.hidden = true;
    setText(byTestId("me"), "");
    byTestId<HTMLInputElement>("login-email").focus();
  };
  logout.addEventListener("click", () => {
    forgetToken();
    leave();
    ask();
  });

  const loginForm = byId<HTMLFormElement>("login-form");
  loginForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = byTestId("login-error");
    setText(err, "");
    const email = byTestId<HTMLInputElement>("login-email").value.trim();
    const password = byTestId<HTMLInputElement>("login-password").value;
    try {
      sessionStorage.setItem(KEY, await api.login(email, password));
      byTestId<HTMLInputElement>("login-password").value = "";
      show(await api.me());
    } catch (x) {
      setText(err, words(x));
    }
  });

  const signupForm = byId<HTMLFormElement>("signup-form");
  signupForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = byTestId("signup-error");
    setText(err, "");
    const name = byTestId<HTMLInputElement>("signup-name").value.trim();
    const email = byTestId<HTMLInputElement>("signup-email").value.trim();
    const password = byTestId<HTMLInputElement>("signup-password").value;
    try {
      await api.signup(email, password, name || null);
      sessionStorage.setItem(KEY, await api.login(email, password));
      show(await api.me());
    } catch (x) {
      setText(
        err,
        x instanceof ApiError && x.status === 403
          ? "Sign-up is closed on this server: ask an administrator for an account."
          : words(x),
      );
    }
  });

  const stored = sessionStorage.getItem(KEY);
  if (!stored) {
    ask();
    return;
  }
  api.token = stored;
  api.me().then(show, () => {
    forgetToken();
    ask();
  });
}
