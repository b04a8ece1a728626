"""Published pretrained weight files that methods build on: which ones, where they come from, and the
local store that holds them as checked safetensors files.

`registry` names the files and what each must hold, `store` imports, checks and loads them, `download`
fetches the downloadable ones. A method that needs one calls `store.require` before it trains and
`store.load` when it builds its network.
"""
