// The agent picker and the "New agent" form.

import { api, listAll } from "./api.js";

const $ = (id) => document.getElementById(id);

/**
 * Fill the picker with the team's agents and return the slug to select: `preferred` when
 * it is there, else the first active agent (null when there is none; the form opens).
 */
export async function fillAgentPicker(preferred) {
  const agents = await listAll("/v1/agents");
  const select = $("agent");
  select.replaceChildren(
    ...agents.map((agent) => {
      const option = new Option(`${agent.name} (${agent.slug})`, agent.slug);
      option.disabled = agent.status !== "active";
      return option;
    }),
  );
  const chosen = agents.find((a) => a.slug === preferred) ?? agents.find((a) => a.status === "active");
  $("new-agent-panel").open = agents.length === 0;
  if (chosen) select.value = chosen.slug;
  return chosen?.slug ?? null;
}

function slugify(name) {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
}

/** Wire the form: the slug follows the name until edited; `onCreated(slug)` after a create. */
export function setupAgentForm(onCreated, onError) {
  let slugEdited = false;
  $("agent-slug").addEventListener("input", () => (slugEdited = true));
  $("agent-name").addEventListener("input", () => {
    if (!slugEdited) $("agent-slug").value = slugify($("agent-name").value);
  });
  $("new-agent").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("new-agent-error").textContent = "";
    const slug = $("agent-slug").value.trim();
    try {
      await api("/v1/agents", {
        method: "POST",
        json: {
          slug,
          name: $("agent-name").value.trim(),
          model: $("agent-model").value.trim() || "demo",
          instructions: $("agent-instructions").value,
        },
      });
      event.target.reset();
      slugEdited = false;
      $("new-agent-panel").open = false;
      await onCreated(slug);
    } catch (error) {
      onError(error);
    }
  });
}
