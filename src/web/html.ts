// The two pages' HTML: a static skeleton (no inline script or style; CSP forbids both) that the
// page's script fills in. `data-testid` names are the stable handles the browser tests use.

const head = (title: string, script: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/${script}"></script>
</head>`;

const loginForm = `<section id="login" class="card narrow" hidden>
<form id="login-form" class="stack">
<h2>Log in</h2>
<label>Email <input data-testid="login-email" name="email" type="email" autocomplete="username" required></label>
<label>Password <input data-testid="login-password" name="password" type="password" autocomplete="current-password" required></label>
<button data-testid="login-submit" type="submit">Log in</button>
<p class="error" data-testid="login-error" role="alert"></p>
</form>
<form id="signup-form" class="stack" data-signup>
<h2>New here? Sign up</h2>
<label>Name <input data-testid="signup-name" name="full_name" autocomplete="name" maxlength="255"></label>
<label>Email <input data-testid="signup-email" name="email" type="email" autocomplete="email" required></label>
<label>Password (8-128 characters) <input data-testid="signup-password" name="password" type="password" autocomplete="new-password" minlength="8" maxlength="128" required></label>
<button data-testid="signup-submit" type="submit">Sign up</button>
<p class="error" data-testid="signup-error" role="alert"></p>
</form>
</section>`;

const top = (title: string) => `<header class="top">
<h1>${title}</h1>
<span class="status" data-testid="connection-status" data-state="idle" role="status" aria-live="polite">Not connected</span>
<span class="me" data-testid="me"></span>
<nav class="links" id="links"></nav>
<button id="logout" data-testid="logout" type="button" hidden>Log out</button>
</header>
<p class="notice" data-testid="notice" role="alert" hidden></p>`;

export const chatHtml = `${head("Kabar chat", "chat.js")}
<body>
${top("Kabar")}
<noscript><p class="card">Kabar's web chat needs JavaScript.</p></noscript>
${loginForm}
<main id="chat" class="chat" hidden>
<aside class="rooms card">
<h2>Rooms</h2>
<form id="create-form" class="row">
<label class="grow"><span class="sr">New room name</span><input data-testid="room-name" name="room" placeholder="new-room" pattern="[a-zA-Z0-9_\\-]{1,100}" maxlength="100" title="1-100 letters, digits, _ or -" required></label>
<button data-testid="room-create" type="submit">Create</button>
</form>
<ul class="list" data-testid="room-list" aria-label="Rooms"></ul>
</aside>
<section class="room card" aria-labelledby="room-title">
<div class="row room-head">
<h2 id="room-title" class="grow" data-testid="current-room">Not in a room</h2>
<button data-testid="leave-room" type="button" disabled>Leave</button>
<button data-testid="close-room" type="button" disabled>Close room</button>
</div>
<p class="members" data-testid="room-members" aria-label="Online in this room"></p>
<ol class="messages" data-testid="message-list" aria-live="polite" aria-label="Messages"></ol>
<p class="typing" data-testid="typing" aria-live="polite"></p>
<form id="send-form" class="row">
<span class="dm" data-testid="direct-target" hidden></span>
<label class="grow"><span class="sr">Message</span><textarea data-testid="message-input" name="content" rows="1" maxlength="10000" placeholder="Message (Enter sends)" title="Enter sends, Shift+Enter makes a new line"></textarea></label>
<button data-testid="message-send" type="submit">Send</button>
</form>
</section>
</main>
</body>
</html>
`;

export const adminHtml = `${head("Kabar admin", "admin.js")}
<body>
${top("Kabar admin")}
<noscript><p class="card">The admin page needs JavaScript.</p></noscript>
${loginForm}
<main id="admin" class="admin" hidden>
<section class="card">
<h2>Live</h2>
<p><span data-testid="admin-connections">-</span> connections, <span data-testid="admin-rooms-count">-</span> rooms, <span data-testid="admin-nodes">-</span></p>
<table class="table"><thead><tr><th>Room</th><th>Creator</th><th>Members</th><th>Created</th></tr></thead><tbody data-testid="admin-rooms"></tbody></table>
</section>
<section class="card">
<h2>Messages per second (last 5 minutes)</h2>
<figure class="chart" data-testid="rate-chart"></figure>
</section>
<section class="card">
<h2>Users</h2>
<form id="user-form" class="row wrap">
<label>Email <input data-testid="user-email" name="email" type="email" required></label>
<label>Password <input data-testid="user-password" name="password" type="password" minlength="8" maxlength="128" required></label>
<label>Name <input data-testid="user-name" name="full_name" maxlength="255"></label>
<label class="check"><input data-testid="user-superuser" name="is_superuser" type="checkbox"> Superuser</label>
<button data-testid="user-create" type="submit">Create user</button>
</form>
<table class="table"><thead><tr><th>Email</th><th>Name</th><th>Role</th><th>Status</th><th></th></tr></thead><tbody data-testid="user-list"></tbody></table>
</section>
<section class="card">
<h2>Broadcast</h2>
<form id="broadcast-form" class="row">
<label class="grow"><span class="sr">Broadcast message</span><input data-testid="broadcast-input" name="content" maxlength="10000" placeholder="A message to every connected socket" required></label>
<button data-testid="broadcast-send" type="submit">Send to everyone</button>
</form>
<p data-testid="broadcast-result" role="status"></p>
</section>
</main>
</body>
</html>
`;
