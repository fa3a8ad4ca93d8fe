"""The canaries' look at what runs outside the cells (see :mod:`.canaries`).

A test reads the kernel while its own cell runs. Code the notebook left behind can act at other
times: another thread, a callback of IPython's events (``pre_run_cell``, ``post_run_cell``), of the
event loop the kernel runs cells from or a task on it, a signal handler (``SIGALRM`` every
millisecond), a trace or profile function, a hook of the garbage collector's (the interpreter calls
it on its own), or a method of the kernel's own machinery replaced (the shell's
``showtraceback``, its compiler, ``sys.stdout.write``, the session that sends the kernel's
messages). Each can tell a test from a canary by what runs or ran last (``In[-1]``) and make a
comparison lenient for the tests alone, then put it back; a fingerprint taken in a canary's cell
sees nothing. So every canary (each test cell comes right after one) names any such code that is
not installed: a function whose code comes from a cell, or from a file the notebook wrote, rather
than from the environment's own files or the course's ``helper`` package. Audit hooks cannot be
listed: the canary at the start refuses any added later (:data:`AUDIT_GUARD`).

:data:`LOOK` is the kernel-side code: a function ``<n>Q`` that prints ``<prefix>^ where:name ...``
when it finds any, through the canary's own imports (``<n>b`` builtins, ``<n>s`` sys, ``<n>k``
threading, ``<n>h`` helper, ``<n>a`` asyncio, ``<n>q`` signal, ``<n>u`` functools, ``<n>e`` gc).
Honest notebooks leave only installed code there: a progress bar's monitor thread, a DataLoader's
queue threads, TensorBoard's writer, ``%matplotlib inline``'s ``post_execute`` hook.
"""

from __future__ import annotations

import re

from .rules import shorten

# Where the kernel's machinery lives: their functions (module level, class level, or set on the
# object) must all be installed code.
MODULES = ("IPython.core.interactiveshell", "IPython.core.compilerop", "IPython.core.inputtransformer2",
           "IPython.core.displayhook", "IPython.core.events", "ipykernel.ipkernel", "ipykernel.kernelbase",
           "ipykernel.zmqshell", "ipykernel.iostream", "jupyter_client.session", "builtins")

LOOK = r'''
def __N__Q(b=__N__b, s=__N__s, k=__N__k, h=__N__h, a=__N__a, q=__N__q, u=__N__u, e=__N__e):
    F, T = (lambda: 0).__class__, ().__class__.__class__
    M, P, SM, CM, PR = T((lambda: 0).__get__(0)), u.partial, b.staticmethod, b.classmethod, b.property
    SEQ, D = (().__class__, [].__class__), {}.__class__
    code = T.__dict__['__dict__'].__get__(F)['__code__'].__get__
    mro, own = T.__dict__['__mro__'].__get__, T.__dict__['__dict__'].__get__
    roots = (s.prefix + '/', s.base_prefix + '/', s.exec_prefix + '/', h.__file__.rpartition('/')[0] + '/', '<frozen ')
    shell = b.getattr(b.getattr(s.modules.get('IPython.core.interactiveshell'), 'InteractiveShell', None),
                      '_instance', None)
    ns, ns_global, ns_hidden = [b.getattr(shell, n, None) for n in ('user_ns', 'user_global_ns', 'user_ns_hidden')]
    plain = (''.__class__, (0).__class__, (0.0).__class__, (True).__class__, (None).__class__, b''.__class__, T)

    def notebooks(x, depth=0, calls=True):
        kind = T(x)
        if kind is F:
            c = code(x)
            return None if c.co_filename.startswith(roots) else ''.join(c.co_name.split()) or '?'
        if kind in plain or depth >= 4 or x is ns or x is ns_global or x is ns_hidden:   # the learner's names: theirs
            return None
        if kind is M or kind is SM or kind is CM:
            inner = [kind.__dict__['__func__'].__get__(x)]
        elif kind is P:
            func, args, keywords = [P.__dict__[name].__get__(x) for name in ('func', 'args', 'keywords')]
            inner = [func, *args, *(keywords or {}).values()]
        elif kind is PR:
            inner = [PR.__dict__[name].__get__(x) for name in ('fget', 'fset', 'fdel')]
        elif kind in SEQ:
            inner = x
        elif kind is D:
            inner = [v for key, v in b.list(D.items(x)) if not (T(key) is ''.__class__ and key.strip('_') == '')]
        elif calls:
            inner = [f for c in mro(kind) for f in (own(c).get('__call__'),) if T(f) is F][:1]
        else:
            inner = []
        for y in inner:
            found = notebooks(y, depth + 1, calls)
            if found:
                return found
        return None

    foreign = []
    for ident, frame in s._current_frames().items():
        while ident != k.get_ident() and frame is not None:
            if not frame.f_code.co_filename.startswith(roots):
                foreign.append('thread:' + (''.join(frame.f_code.co_name.split()) or '?'))
                break
            frame = frame.f_back
    # a thread's own code, also while it waits in the library's (a Timer due later, a target it will call;
    # not its arguments: a pool's idle worker keeps the initializer it ran once)
    waiting = [('thread:' + ''.join(t.name.split()), [x for key, x in b.list(b.vars(t).items()) if key.strip('_') in
                ('target', 'function')] + [T(t).run]) for t in k.enumerate()]
    waiting += [('signal', q.getsignal(x)) for x in q.valid_signals()]
    # hooks the interpreter calls on its own: the garbage collector's, for errors nobody catches, for
    # async generators, and breakpoint()
    waiting += [('gc', b.list(e.callbacks)), ('unraisablehook', s.unraisablehook), ('excepthook', k.excepthook),
                ('asyncgen', b.list(s.get_asyncgen_hooks())), ('breakpointhook', s.breakpointhook)]
    waiting += [('trace', s.gettrace()), ('profile', s.getprofile())]
    events = shell.events.callbacks if shell is not None else {}
    waiting += [('event:' + name, x) for name in b.list(events) for x in b.list(events[name])]
    waiting += [('post_execute', b.list(b.getattr(shell, '_post_execute', None) or ()))]
    loop, H = a.events._get_running_loop(), a.events.Handle
    if loop is not None:
        for handle in [*b.getattr(loop, '_ready', ()), *b.getattr(loop, '_scheduled', ())]:
            if T(handle) is not H and T(handle) is not a.events.TimerHandle:
                foreign.append('loop:' + ''.join(T(handle).__name__.split()))
            else:
                waiting.append(('loop', [H.__dict__[n].__get__(handle) for n in ('_callback', '_args')]))
        for task in a.all_tasks(loop):   # a coroutine's steps are the loop's own callbacks: name its code
            coro = task.get_coro()
            c = b.getattr(coro, 'cr_code', None) or b.getattr(coro, 'gi_code', None)
            if c is not None and not c.co_filename.startswith(roots):
                foreign.append('task:' + (''.join(c.co_name.split()) or '?'))
    kernel = b.getattr(shell, 'kernel', None)
    machinery = {'shell': shell, 'kernel': kernel, 'session': b.getattr(kernel, 'session', None),
                 'stdout': s.stdout, 'stderr': s.stderr, 'excepthook': s.excepthook, 'displayhook': s.displayhook,
                 'shell.displayhook': b.getattr(shell, 'displayhook', None),
                 'display_pub': b.getattr(shell, 'display_pub', None), 'compile': b.getattr(shell, 'compile', None),
                 'events': b.getattr(shell, 'events', None)}
    machinery.update((name, s.modules.get(name)) for name in __MODULES__)
    labels = b.tuple(machinery)
    for label, thing in machinery.items():
        if thing is None:
            continue
        spaces = [own(c) for c in mro(T(thing))[:-1]]
        try:
            spaces.append(b.vars(thing))
        except b.TypeError:
            pass
        waiting.append((label, thing))
        waiting += [(label + '.' + key, v) for space in spaces for key, v in b.list(space.items())
                    if T(key) is ''.__class__ and key.strip('_') != '']
    for where, x in waiting:
        found = notebooks(x, 0, not where.startswith(labels))
        if found:
            foreign.append(where + ':' + found)
    if foreign:
        b.print("__P__^ " + " ".join(b.dict.fromkeys(foreign)) + "\n", end="")
'''


# An audit hook (sys.addaudithook) is called by the interpreter on its own, inside a test cell too, and
# nothing lists it. The canary at the start, before any learner code, adds one that refuses every hook
# added after it (the interpreter then drops the new hook in silence) and says so on the cell's stderr.
AUDIT_GUARD = '''def __N__A(b=__N__b):
    s = b.__import__('sys')
    def guard(event, args):
        if event == 'sys.addaudithook':
            s.stderr.write('__P__! an audit hook was refused\\n')
            raise b.RuntimeError('no audit hooks while grading')
    s.addaudithook(guard)
__N__A()
del __N__A
'''


def look(n: str, prefix: str) -> str:
    """The kernel-side code defining ``{n}Q`` (call it, then delete it) for a canary using names ``n...``."""
    return LOOK.replace("__N__", n).replace("__P__", prefix).replace("__MODULES__", repr(MODULES))


def found(text: str, prefix: str) -> list[str]:
    """What ``{n}Q`` named in a cell's output, in order, once each."""
    return list(dict.fromkeys(name for line in re.findall(re.escape(prefix) + r"\^ (.*)", text)
                              for name in line.split()))


def reason(the: str, names: list[str]) -> str:
    """The one-line reason for ``names`` found by ``the`` (e.g. "the canary after cell 4")."""
    return (f"tampered: {the} found the notebook's own code running or waiting to run outside its cells "
            f"({shorten(', '.join(names), 100)}): it can change what a test compares with for the tests alone")
