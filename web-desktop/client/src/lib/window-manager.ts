import { reactive, watch } from "vue";

export type WindowKind = "terminal" | "files" | "processes" | "nodes" | "ports";

export interface DesktopWindow {
  readonly id: number;
  readonly kind: WindowKind;
  title: string;
  x: number;
  y: number;
  w: number;
  h: number;
  z: number;
  /** Terminal windows: the server-side shell session to re-attach to after a reload. */
  session?: string;
  /** Files windows: the directory shown. */
  dir?: string;
}

const TITLES: Record<WindowKind, string> = { terminal: "Terminal", files: "Files", processes: "Processes", nodes: "Nodes", ports: "Ports" };
const SIZES: Record<WindowKind, [number, number]> = { terminal: [760, 460], files: [720, 480], processes: [780, 460], nodes: [700, 500], ports: [560, 320] };
/** Kinds with one window at most: a second Processes window would show the same thing. */
const SINGLE: ReadonlySet<WindowKind> = new Set(["processes", "nodes", "ports"]);
/** Windows survive a reload (terminals re-attach to their shells) but not the tab: sessionStorage. */
const STORAGE_KEY = "oneos.desktop.windows";

interface State {
  windows: DesktopWindow[];
  nextId: number;
  topZ: number;
}

function restore(): State {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null") as State | null;
    if (saved !== null && Array.isArray(saved.windows)) return saved;
  } catch {
    // a bad saved layout is simply dropped
  }
  return { windows: [], nextId: 1, topZ: 1 };
}

export const desktop: State = reactive(restore());

watch(desktop, (state) => sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state)), { deep: true });

export function focusWindow(win: DesktopWindow): void {
  if (win.z === desktop.topZ) return;
  win.z = ++desktop.topZ;
}

export function openWindow(kind: WindowKind): DesktopWindow {
  const existing = SINGLE.has(kind) ? desktop.windows.find((w) => w.kind === kind) : undefined;
  if (existing !== undefined) {
    focusWindow(existing);
    return existing;
  }
  const [w, h] = SIZES[kind];
  const n = desktop.windows.length;
  const width = Math.min(w, Math.max(320, window.innerWidth - 40));
  const height = Math.min(h, Math.max(240, window.innerHeight - 90));
  const win: DesktopWindow = {
    id: desktop.nextId++,
    kind,
    title: TITLES[kind],
    x: Math.max(0, Math.min(24 + n * 28, window.innerWidth - width)),
    y: Math.max(0, Math.min(16 + n * 28, window.innerHeight - height - 48)),
    w: width,
    h: height,
    z: ++desktop.topZ,
  };
  desktop.windows.push(win);
  return desktop.windows[desktop.windows.length - 1]!;
}

export function closeWindow(win: DesktopWindow): void {
  const i = desktop.windows.findIndex((w) => w.id === win.id);
  if (i >= 0) desktop.windows.splice(i, 1);
}

export function topWindow(): DesktopWindow | undefined {
  return desktop.windows.reduce<DesktopWindow | undefined>((top, w) => (top === undefined || w.z > top.z ? w : top), undefined);
}
